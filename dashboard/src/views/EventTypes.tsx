// Setup's "Event types" section: choose what the relay subscribes to
// (stored by the relay for every replica), see the scopes the choice needs,
// and connect Twitch again when the authorization lacks some.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, errorText } from "../api";
import { Notice } from "../components";
import type { Session } from "../main";
import type { CatalogType, EventTypesDoc } from "../types";
import { ConnectButton } from "./Setup";

const key = (type: string, version: string) => `${type}@${version}`;
const SOURCE_WORDS: Record<string, string> = {
  environment: "the relay's environment (TAU_EVENTSUB_TYPES)",
  dashboard: "this dashboard (stored by the relay)",
  operator: "the operator (the TwitchChannel's spec.events)",
};

function union(lists: string[][]): string[] {
  return [...new Set(lists.flat())].sort();
}

function TypeRow({
  entry,
  showVersion,
  checked,
  disabled,
  granted,
  onToggle,
}: {
  entry: CatalogType;
  showVersion: boolean;
  checked: boolean;
  disabled: boolean;
  granted: string[] | null;
  onToggle: (on: boolean) => void;
}) {
  const id = `et-${entry.name}-${entry.version}`.replace(/[^a-zA-Z0-9_-]/g, "_");
  const lacking = granted ? entry.scopes.filter((s) => !granted.includes(s)) : [];
  return (
    <li class={`type-row${checked ? " chosen" : ""}`}>
      <input id={id} type="checkbox" checked={checked} disabled={disabled} aria-describedby={`${id}-d`} onChange={(e) => onToggle((e.target as HTMLInputElement).checked)} />
      <div class="type-text">
        <label for={id} class="type-name">
          {entry.event_type}
          {showVersion ? ` (version ${entry.version})` : ""}
        </label>
        <span id={`${id}-d`} class="type-desc">
          {entry.description ? `${entry.description} ` : ""}
          {entry.scopes.length === 0 ? (
            <span class="muted">No scope needed.</span>
          ) : (
            <span>
              Needs{" "}
              {entry.scopes.map((s, i) => (
                <span key={s}>
                  {i > 0 && ", "}
                  <code class={checked && lacking.includes(s) ? "lacking" : undefined}>{s}</code>
                  {checked && lacking.includes(s) ? <span class="lacking-word"> (not granted)</span> : null}
                </span>
              ))}
              .
            </span>
          )}
        </span>
      </div>
    </li>
  );
}

export function EventTypes({ session, catalog }: { session: Session; catalog: CatalogType[] }) {
  const [doc, setDoc] = useState<EventTypesDoc | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [query, setQuery] = useState("");
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [saved, setSaved] = useState(false);
  const admin = session.can("admin");

  const take = (d: EventTypesDoc) => {
    setDoc(d);
    setChosen(new Set(d.types.map((t) => key(t.type, t.version))));
  };
  useEffect(() => {
    if (!admin) return;
    api<EventTypesDoc>("/api/v1/twitch/event-types").then(take, (e) => setLoadError(errorText(e)));
  }, [admin]);

  const versions = useMemo(() => {
    const n: Record<string, number> = {};
    for (const c of catalog) n[c.name] = (n[c.name] ?? 0) + 1;
    return n;
  }, [catalog]);
  const byKey = useMemo(() => new Map(catalog.map((c) => [key(c.name, c.version), c])), [catalog]);

  if (!admin) return null;
  if (loadError)
    return (
      <section class="card event-types" aria-labelledby="et-h">
        <h2 id="et-h">Event types</h2>
        <Notice kind="error">Could not read the event types: {loadError}</Notice>
      </section>
    );
  if (!doc || catalog.length === 0)
    return (
      <section class="card event-types" aria-labelledby="et-h">
        <h2 id="et-h">Event types</h2>
        <p class="muted">Loading…</p>
      </section>
    );

  const readOnly = doc.source === "operator";
  const granted = doc.scopes_granted;
  const original = new Set(doc.types.map((t) => key(t.type, t.version)));
  const dirty = chosen.size !== original.size || [...chosen].some((k) => !original.has(k));
  const needed = union([...chosen].map((k) => byKey.get(k)?.scopes ?? []));
  const lacking = granted ? needed.filter((s) => !granted.includes(s)) : [];
  const q = query.trim().toLowerCase();
  const matches = (c: CatalogType) =>
    !q || [c.name, c.event_type, c.description, c.subscription_type ?? "", ...c.scopes].some((x) => x.toLowerCase().includes(q));
  const sorted = [...catalog].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  const groups = [
    { id: "default", title: "Default set", items: sorted.filter((c) => c.active) },
    { id: "other", title: "Other types", items: sorted.filter((c) => !c.active) },
  ];
  const toggle = (k: string, on: boolean) => {
    const next = new Set(chosen);
    if (on) next.add(k);
    else next.delete(k);
    setChosen(next);
    setMsg(null);
    setSaved(false);
  };
  const send = async (method: "PUT" | "DELETE") => {
    setBusy(true);
    setMsg(null);
    try {
      const body = method === "PUT" ? { event_types: [...chosen] } : undefined;
      const d = await api<EventTypesDoc>("/api/v1/twitch/event-types", { method, body });
      take(d);
      setSaved(true);
      setMsg({
        kind: "ok",
        text:
          method === "PUT"
            ? `Saved: ${d.event_types.length} event type(s). The relay subscribes to them anew.`
            : `Back to the environment's ${d.event_types.length} event type(s).`,
      });
    } catch (e) {
      setMsg({ kind: "error", text: `${method === "PUT" ? "Saving" : "Resetting"} failed: ${errorText(e)}` });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card event-types" aria-labelledby="et-h">
      <h2 id="et-h">Event types</h2>
      <p>
        Chosen by <b>{SOURCE_WORDS[doc.source] ?? doc.source}</b>: {doc.event_types.length} type(s).
      </p>
      {readOnly && (
        <Notice kind="info">
          The operator manages this relay's Twitch subscriptions: the TwitchChannel's <code>spec.events</code> decides which event types
          arrive. Change them there; this list is read-only.
        </Notice>
      )}
      {saved && doc.scopes_missing.length > 0 && (
        <div class="notice error reauth" role="alert">
          <p>
            <b>Twitch must be connected again.</b> The chosen event types need scopes the current authorization does not grant:{" "}
            {doc.scopes_missing.join(", ")}. Until the broadcaster connects again, those events do not arrive.
          </p>
          <ConnectButton label="Connect Twitch again" session={session} />
        </div>
      )}
      {msg && <Notice kind={msg.kind}>{msg.text}</Notice>}
      <div class="et-scopes">
        <p class="small-text">
          Scopes {dirty ? "this choice needs" : "needed"}: {needed.length ? needed.join(", ") : "none"}.
        </p>
        {granted === null ? (
          <p class="small-text muted">Twitch is not connected yet: Connect Twitch asks for these scopes.</p>
        ) : lacking.length > 0 ? (
          <p class="small-text err-text">
            The current Twitch authorization lacks: {lacking.join(", ")}
            {dirty ? " (after saving, connect Twitch again)" : ""}.
          </p>
        ) : (
          <p class="small-text muted">The current Twitch authorization grants all of them.</p>
        )}
      </div>
      <label class="et-search">
        Search event types
        <input type="search" value={query} placeholder="follow, bits:read, hype…" onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
      </label>
      {groups.map((g) => {
        const shown = g.items.filter(matches);
        const picked = g.items.filter((c) => chosen.has(key(c.name, c.version))).length;
        const list = (
          <ul class="type-list">
            {shown.map((c) => {
              const k = key(c.name, c.version);
              return (
                <TypeRow
                  key={k}
                  entry={c}
                  showVersion={(versions[c.name] ?? 1) > 1}
                  checked={chosen.has(k)}
                  disabled={readOnly || busy}
                  granted={granted}
                  onToggle={(on) => toggle(k, on)}
                />
              );
            })}
          </ul>
        );
        const heading = `${g.title} (${picked} of ${g.items.length} chosen)`;
        if (shown.length === 0) return q ? <p class="muted small-text" key={g.id}>{g.title}: nothing matches.</p> : null;
        // The default set is open; the others open while searching.
        return g.id === "default" || q ? (
          <fieldset key={g.id + (q ? "-q" : "")} class="type-group">
            <legend>{heading}</legend>
            {list}
          </fieldset>
        ) : (
          <details key={g.id} class="type-group">
            <summary>{heading}</summary>
            <fieldset class="type-group-inner">
              <legend class="offscreen">{g.title}</legend>
              {list}
            </fieldset>
          </details>
        );
      })}
      {!readOnly && (
        <div class="row et-actions">
          <button type="button" class="primary" disabled={busy || !dirty || chosen.size === 0} onClick={() => send("PUT")}>
            {busy ? "Saving…" : "Save event types"}
          </button>
          <button type="button" disabled={busy || !dirty} onClick={() => take(doc)}>
            Undo changes
          </button>
          <button
            type="button"
            disabled={busy}
            onClick={() => {
              setChosen(new Set(catalog.filter((c) => c.active).map((c) => key(c.name, c.version))));
              setSaved(false);
              setMsg(null);
            }}
          >
            Choose the default set
          </button>
          <button type="button" class="danger" disabled={busy || doc.source !== "dashboard"} onClick={() => send("DELETE")}>
            Reset to environment
          </button>
        </div>
      )}
      {!readOnly && chosen.size === 0 && <p class="small-text err-text">Choose at least one event type.</p>}
      <p class="small-text muted">
        The environment (TAU_EVENTSUB_TYPES) names {doc.environment.length} type(s). Saving applies to every replica within seconds.
      </p>
    </section>
  );
}
