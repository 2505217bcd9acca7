import type { SocketState } from "../api";
import { Dot, type Level } from "../components";
import { ago, relative, when } from "../render";
import type { ReplicaStatus, StatusDoc, SubscriptionStatus } from "../types";

export function subscriptionsOf(s: StatusDoc): SubscriptionStatus[] {
  const conduit = s.twitch.conduit as { subscriptions?: SubscriptionStatus[] } | null;
  if (s.twitch.eventsub.subscriptions.length === 0 && conduit?.subscriptions?.length) return conduit.subscriptions;
  return s.twitch.eventsub.subscriptions;
}

export function subLevel(status: string): Level {
  if (status === "enabled") return "ok";
  if (status.includes("pending")) return "warn";
  return "bad";
}

export function scopeInfo(s: StatusDoc) {
  const granted = s.twitch.user_token.scopes ?? [];
  const needed = s.twitch.user_token.scopes_needed ?? null;
  const missing = s.twitch.user_token.scopes_missing ?? (needed ? needed.filter((x) => !granted.includes(x)) : []);
  return { granted, needed, missing };
}

function Row({ k, stacked, children }: { k: string; stacked?: boolean; children: preact.ComponentChildren }) {
  return (
    <div class={stacked ? "kv stacked" : "kv"}>
      <dt>{k}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function uptime(started: string): string {
  const t = new Date(started).getTime();
  if (isNaN(t)) return "";
  const s = Math.floor((Date.now() - t) / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min ${s % 60} s`;
}

export function Status({ status, statusState }: { status: StatusDoc | null; statusState: SocketState }) {
  const live = statusState.kind === "open";
  const head = (
    <div class="view-head">
      <h1 id="status-h">Status</h1>
      <Dot level={live ? "ok" : statusState.kind === "refused" ? "bad" : "warn"}>
        {live
          ? "Updating live"
          : statusState.kind === "refused"
            ? `Live updates refused: ${statusState.reason}`
            : "Live updates reconnecting; showing the last known status"}
      </Dot>
    </div>
  );
  if (!status)
    return (
      <section aria-labelledby="status-h">
        {head}
        <p class="muted">Waiting for the relay's status…</p>
      </section>
    );
  const tw = status.twitch;
  const ut = tw.user_token;
  const es = tw.eventsub;
  const { granted, needed, missing } = scopeInfo(status);
  const subs = subscriptionsOf(status);
  const expires = ut.expires_at ? new Date(ut.expires_at).getTime() : NaN;
  const utLevel: Level = ut.state === "valid" ? (missing.length ? "warn" : "ok") : "bad";
  const esLevel = eventsubLevel(es.state);

  return (
    <section aria-labelledby="status-h">
      {head}
      <div class="grid">
        <section class="card" aria-labelledby="st-auth">
          <h2 id="st-auth">Twitch authorization</h2>
          <dl>
            <Row k="Broadcaster token">
              <Dot level={utLevel}>
                {ut.state === "valid"
                  ? `Authorized${ut.login ? ` by ${ut.login}` : ""}`
                  : ut.state === "missing"
                    ? "Not authorized yet (see Setup)"
                    : "Authorization needed again (see Setup)"}
              </Dot>
            </Row>
            <Row k="Token expiry">
              {isNaN(expires) ? "—" : `${when(ut.expires_at)} (${relative(expires)}; refreshed automatically)`}
            </Row>
            <Row k="Scopes granted" stacked>{granted.length ? <ScopeList scopes={granted} missing={[]} /> : "none"}</Row>
            {needed && (
              <Row k="Scopes needed" stacked>
                <ScopeList scopes={needed} missing={missing} />
              </Row>
            )}
            {missing.length > 0 && (
              <Row k="Missing scopes">
                <Dot level="bad">
                  {missing.join(", ")}: connect Twitch again in Setup to grant them
                </Dot>
              </Row>
            )}
            <Row k="App credentials">
              <Dot level={!tw.client_id_configured ? "bad" : tw.app_token.state === "valid" ? "ok" : tw.app_token.state === "rejected" ? "bad" : "warn"}>
                {!tw.client_id_configured
                  ? "Not configured"
                  : tw.app_token.state === "valid"
                    ? "Accepted by Twitch"
                    : tw.app_token.state === "rejected"
                      ? `Rejected by Twitch${tw.app_token.error ? `: ${tw.app_token.error}` : ""}`
                      : "Not checked yet"}
              </Dot>
              {tw.credentials_source && (
                <span class="muted small-text"> ({tw.credentials_source === "environment" ? "from the environment" : "entered in Setup"})</span>
              )}
            </Row>
            <Row k="Broadcaster">{tw.broadcaster ?? "not set"}</Row>
          </dl>
        </section>
        <section class="card" aria-labelledby="st-es">
          <h2 id="st-es">EventSub connection</h2>
          <dl>
            <Row k="State">
              <Dot level={esLevel}>{es.state.replace(/_/g, " ")}</Dot>
            </Row>
            <Row k="Transport">{es.transport}</Row>
            <Row k="Session">{es.session_id ?? "—"}</Row>
            <Row k="Connected since">{es.connected_at ? `${when(es.connected_at)} (${ago(es.connected_at)})` : "—"}</Row>
            <Row k="Keepalive">{es.keepalive_seconds ? `${es.keepalive_seconds} s` : "—"}</Row>
            <Row k="Last error">{es.last_error ? <span class="err-text">{es.last_error}</span> : "none"}</Row>
            <Row k="Webhook secret">{tw.webhook_secret_configured ? "configured" : "not set"}</Row>
          </dl>
        </section>
        <section class="card" aria-labelledby="st-relay">
          <h2 id="st-relay">Relay</h2>
          <dl>
            <Row k="Version">{status.version}</Row>
            <Row k="Up for">
              {uptime(status.started_at)} (since {when(status.started_at)})
            </Row>
            <Row k="Database">{status.database}</Row>
            <Row k="Clients connected">{status.clients_connected} (on this replica)</Row>
            <Row k="Replicas">
              <Replicas list={status.replicas ?? []} />
            </Row>
            <Row k="Events stored">{status.events_stored.toLocaleString()}</Row>
            <Row k="Last event">{status.last_event_at ? `${when(status.last_event_at)} (${ago(status.last_event_at)})` : "none yet"}</Row>
          </dl>
        </section>
      </div>
      <section class="card" aria-labelledby="st-subs">
        <h2 id="st-subs">Subscriptions ({subs.length})</h2>
        <SubscriptionTable subs={subs} skipped={es.skipped} />
      </section>
      <section class="card" aria-labelledby="st-rev">
        <h2 id="st-rev">Revocations</h2>
        {status.revocations.length === 0 ? (
          <p class="muted">Twitch has revoked no subscription.</p>
        ) : (
          <div class="table-wrap">
            <table class="stack">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Type</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Transport</th>
                </tr>
              </thead>
              <tbody>
                {status.revocations.map((r, i) => (
                  <tr key={i}>
                    <td data-label="When">{typeof r.received_us === "number" ? new Date(r.received_us / 1000).toLocaleString() : ""}</td>
                    <td data-label="Type">
                      {typeWords(String(r.subscription_type ?? ""))} v{String(r.version ?? "")}
                    </td>
                    <td data-label="Reason">{String(r.status ?? "").replace(/_/g, " ")}</td>
                    <td data-label="Transport">{String(r.transport ?? "")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </section>
  );
}

/** A name with break chances (`<wbr>`) after each of `marks`: "moderator:read:<wbr>followers". */
function breakAfter(s: string, marks: string) {
  const out: preact.ComponentChild[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    if (marks.includes(s[i]) && i + 1 < s.length) {
      out.push(s.slice(from, i + 1), <wbr key={i} />);
      from = i + 1;
    }
  }
  out.push(s.slice(from));
  return out;
}
const scopeWords = (s: string) => breakAfter(s, ":");
const typeWords = (s: string) => breakAfter(s, "._");

function ScopeList({ scopes, missing }: { scopes: string[]; missing: string[] }) {
  return (
    <ul class="scopes">
      {scopes.map((s) => (
        <li key={s} class={missing.includes(s) ? "missing" : ""}>
          <code>{scopeWords(s)}</code>
          {missing.includes(s) ? " (missing)" : ""}
        </li>
      ))}
    </ul>
  );
}

export function SubscriptionTable({ subs, skipped }: { subs: SubscriptionStatus[]; skipped: string[] }) {
  if (subs.length === 0 && skipped.length === 0) return <p class="muted">No subscriptions yet (they are created once Twitch is connected).</p>;
  return (
    <div class="table-wrap">
      <table class="stack compact">
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Version</th>
            <th scope="col">Twitch status</th>
          </tr>
        </thead>
        <tbody>
          {subs.map((s) => (
            <tr key={`${s.type}@${s.version}`}>
              <td>
                <code>{typeWords(s.type)}</code>
              </td>
              <td data-label="Version">{s.version}</td>
              <td data-label="Twitch status">
                <Dot level={subLevel(s.status)}>{s.status.replace(/_/g, " ")}</Dot>
              </td>
            </tr>
          ))}
          {skipped.map((s) => (
            <tr key={`skip-${s}`}>
              <td>
                <code>{typeWords(s)}</code>
              </td>
              <td data-label="Version">—</td>
              <td data-label="Twitch status">
                <Dot level="off">skipped (its condition cannot be filled)</Dot>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const JOB_NAMES: Record<string, string> = {
  "eventsub-websocket": "EventSub socket",
  "conduit-manager": "conduit manager",
};

/** What a lease name means to a reader (`conduit-shard:0` → "conduit shard 0"). */
function jobName(lease: string): string {
  if (JOB_NAMES[lease]) return JOB_NAMES[lease];
  if (lease.startsWith("conduit-shard:")) return `conduit shard ${lease.slice("conduit-shard:".length)}`;
  if (lease.startsWith("eventsub-websocket-bot:")) return `bot session ${lease.slice("eventsub-websocket-bot:".length)}`;
  return lease;
}

function Replicas({ list }: { list: ReplicaStatus[] }) {
  if (list.length === 0) return <>—</>;
  return (
    <>
      {list.length}
      <ul class="replicas">
        {list.map((r) => (
          <li key={r.id}>
            <code>{r.id}</code>
            {r.this_replica && " (this one)"}
            {r.holds.length > 0 && `: ${r.holds.map(jobName).join(", ")}`}
          </li>
        ))}
      </ul>
    </>
  );
}

/** The light for an EventSub state (`connected` for sockets, `subscribed` for webhooks). */
export function eventsubLevel(state: string): Level {
  if (state === "connected" || state === "subscribed") return "ok";
  if (state === "disabled") return "off";
  if (state === "backoff" || state === "error" || state === "waiting_for_authorization" || state === "waiting_for_credentials") return "bad";
  return "warn";
}
