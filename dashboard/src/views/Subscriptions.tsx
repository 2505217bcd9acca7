import { useState } from "preact/hooks";
import { api, errorText } from "../api";
import { Notice } from "../components";
import type { Session } from "../main";
import type { CatalogType, StatusDoc } from "../types";
import { SubscriptionTable, subscriptionsOf } from "./Status";

export function Subscriptions({ status, session, catalog }: { status: StatusDoc | null; session: Session; catalog: CatalogType[] }) {
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const resubscribe = async () => {
    setBusy(true);
    try {
      await api("/api/v1/twitch/resubscribe", { method: "POST" });
      setMsg({ ok: true, text: "Resubscribing: the table updates as Twitch answers." });
    } catch (e) {
      setMsg({ ok: false, text: `Could not resubscribe: ${errorText(e)}` });
    } finally {
      setBusy(false);
    }
  };
  const subs = status ? subscriptionsOf(status) : [];
  const bad = subs.filter((s) => s.status !== "enabled").length;
  return (
    <section aria-labelledby="subs-h">
      <div class="view-head">
        <h1 id="subs-h">Subscriptions</h1>
        {session.can("admin") && (
          <button type="button" class="primary" disabled={busy} onClick={resubscribe}>
            {busy ? "Resubscribing…" : "Resubscribe"}
          </button>
        )}
      </div>
      <p class="muted">
        What Twitch says about each EventSub subscription of this relay. Resubscribe drops and recreates them (after changing
        scopes, or when some are stuck).
      </p>
      {msg && <Notice kind={msg.ok ? "ok" : "error"}>{msg.text}</Notice>}
      {!status ? (
        <p class="muted">Waiting for the relay's status…</p>
      ) : (
        <>
          <p>
            {subs.length} subscription(s) via {status.twitch.eventsub.transport}
            {bad ? `, ${bad} not enabled` : subs.length ? ", all enabled" : ""}. {catalog.filter((c) => c.active).length} types in the
            default set.
          </p>
          <div class="card">
            <SubscriptionTable subs={subs} skipped={status.twitch.eventsub.skipped} />
          </div>
        </>
      )}
    </section>
  );
}
