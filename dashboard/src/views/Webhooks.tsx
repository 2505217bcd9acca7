// Webhook forwarding (`/api/v1/webhook-targets`, admin only): receivers TAU
// POSTs every event to, signed the way Twitch signs EventSub webhooks, so a
// stock webhook handler verifies them unchanged. The list shows how each
// receiver is doing (a light and words, backlog, counts, the last error) and
// is read again every few seconds while the page is visible, since delivery
// state changes on the relay without a socket to tell us. Adding a target
// makes TAU send Twitch's challenge first: a receiver that does not answer
// it is refused (422) and that reason is shown next to the form.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, errorText } from "../api";
import { CopyButton, Dot, LiveRegion, Notice, type Level } from "../components";
import type { Session } from "../main";
import { ago, when } from "../render";
import type { CatalogType, WebhookTarget } from "../types";

const REFRESH_MS = 3000;
const byName = (a: WebhookTarget, b: WebhookTarget) => a.name.localeCompare(b.name);
const SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random 32-character secret (Twitch accepts 10 to 100 ASCII characters). */
function randomSecret(): string {
  const out: string[] = [];
  // Rejection sampling keeps every character equally likely.
  while (out.length < 32) {
    for (const b of crypto.getRandomValues(new Uint8Array(48))) {
      if (b < 248 && out.length < 32) out.push(SECRET_CHARS[b % 62]);
    }
  }
  return out.join("");
}

/** The target's state as a light and words (colour is never the only sign). */
export function targetWords(t: WebhookTarget): [Level, string] {
  const since = t.last_success_at ? `nothing delivered since ${when(t.last_success_at)}` : "nothing delivered yet";
  switch (t.status) {
    case "enabled":
      return ["ok", "Enabled"];
    case "retrying":
      return ["warn", `Retrying: ${since}`];
    case "paused":
      return t.paused_reason === "failing"
        ? ["bad", `Paused: failing, ${since}. Resume when the receiver is back.`]
        : ["off", "Paused by hand"];
    default:
      return ["warn", t.status.replace(/_/g, " ")];
  }
}

/** EventSub types to choose from: one entry per type, whatever its versions. */
function typeNames(catalog: CatalogType[]): { name: string; description: string }[] {
  const seen = new Map<string, string>();
  for (const c of catalog) if (!seen.has(c.name)) seen.set(c.name, c.description);
  return [...seen].map(([name, description]) => ({ name, description })).sort((a, b) => a.name.localeCompare(b.name));
}

/** Event types as checkboxes with a search; none chosen means every type. */
function TypePicker({
  idPrefix,
  catalog,
  chosen,
  setChosen,
}: {
  idPrefix: string;
  catalog: CatalogType[];
  chosen: string[];
  setChosen: (c: string[]) => void;
}) {
  const [query, setQuery] = useState("");
  const names = useMemo(() => typeNames(catalog), [catalog]);
  const q = query.trim().toLowerCase();
  const shown = names.filter((n) => !q || n.name.includes(q) || n.description.toLowerCase().includes(q));
  return (
    <details class="more">
      <summary>Event types ({chosen.length ? `${chosen.length} chosen` : "all types"})</summary>
      <p class="small-text muted">Choose none to forward every type.</p>
      <div class="row">
        <label>
          Find
          <input type="search" value={query} placeholder="follow, cheer…" onInput={(ev) => setQuery((ev.target as HTMLInputElement).value)} />
        </label>
        {chosen.length > 0 && (
          <button type="button" class="small" onClick={() => setChosen([])}>
            Clear (all types)
          </button>
        )}
      </div>
      <fieldset class="checks">
        <legend class="offscreen">Event types to forward</legend>
        {catalog.length === 0 && <p class="muted small-text">Loading the catalog…</p>}
        {shown.map((n) => (
          <label key={n.name} class="check" title={n.description}>
            <input
              type="checkbox"
              id={`${idPrefix}-${n.name}`.replace(/[^a-zA-Z0-9_-]/g, "_")}
              checked={chosen.includes(n.name)}
              onChange={(ev) =>
                setChosen((ev.target as HTMLInputElement).checked ? [...chosen, n.name].sort() : chosen.filter((x) => x !== n.name))
              }
            />
            {n.name}
          </label>
        ))}
      </fieldset>
    </details>
  );
}

/** A password field with a "Generate" button; a generated secret is shown once to copy. */
function SecretField({
  id,
  label,
  value,
  setValue,
  hint,
}: {
  id: string;
  label: string;
  value: string;
  setValue: (s: string) => void;
  hint?: string;
}) {
  const [shown, setShown] = useState<string | null>(null);
  return (
    <div class="field wide">
      <label for={id}>{label}</label>
      <div class="row">
        <input
          id={id}
          type="password"
          value={value}
          autoComplete="new-password"
          maxLength={100}
          aria-describedby={`${id}-hint`}
          onInput={(ev) => {
            setValue((ev.target as HTMLInputElement).value);
            setShown(null);
          }}
        />
        <button
          type="button"
          class="small"
          onClick={() => {
            const s = randomSecret();
            setValue(s);
            setShown(s);
          }}
        >
          Generate
        </button>
      </div>
      <span id={`${id}-hint`} class="small-text muted">
        {hint ?? "10 to 100 characters; your receiver verifies each request's signature with it."}
      </span>
      {shown && value === shown && (
        <div class="copy-line" role="status">
          <span class="small-text">Copy it into your receiver now: it is not shown again.</span>
          <code class="secret">{shown}</code>
          <CopyButton text={shown} label="Copy secret" />
        </div>
      )}
    </div>
  );
}

/** Words for a refused create or change: a 422 is the receiver's answer to the challenge. */
function refusal(e: unknown): string {
  if (e instanceof ApiError && e.status === 422) return `The receiver did not pass Twitch's challenge, nothing was stored: ${e.message}`;
  return errorText(e);
}

function AddTarget({ catalog, onAdded }: { catalog: CatalogType[]; onAdded: (t: WebhookTarget) => void }) {
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [secret, setSecret] = useState("");
  const [types, setTypes] = useState<string[]>([]);
  const [broadcaster, setBroadcaster] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [added, setAdded] = useState<string | null>(null);
  // A new key closes and clears the type picker after an add.
  const [generation, setGeneration] = useState(0);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const n = name.trim();
    const u = url.trim();
    const s = secret;
    if (!n || !u) return setError(!n ? "Give the target a name." : "Enter the receiver's URL.");
    if (s.length < 10 || s.length > 100) return setError("The secret must be 10 to 100 characters (use Generate).");
    setBusy(true);
    setError(null);
    setAdded(null);
    try {
      const body: Record<string, unknown> = { name: n, url: u, secret: s, event_types: types };
      const b = broadcaster.trim();
      if (b) body.conditions = { broadcaster_user_id: b };
      const t = await api<WebhookTarget>("/api/v1/webhook-targets", { method: "POST", body });
      onAdded(t);
      setAdded(`Added “${t.name}”: the receiver answered the challenge.`);
      setName("");
      setUrl("");
      setSecret("");
      setTypes([]);
      setBroadcaster("");
      setGeneration((g) => g + 1);
    } catch (e) {
      setError(refusal(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" aria-labelledby="wh-add-h" onSubmit={submit} noValidate>
      <h2 id="wh-add-h">Add a webhook target</h2>
      <p class="small-text muted">
        TAU first sends Twitch's <code>webhook_callback_verification</code> challenge to the URL; the receiver must answer with the
        challenge, as it would for Twitch.
      </p>
      <div class="fields">
        <div class="field">
          <label for="wh-name">Name</label>
          <input id="wh-name" value={name} maxLength={100} autoComplete="off" onInput={(ev) => setName((ev.target as HTMLInputElement).value)} />
        </div>
        <div class="field wide">
          <label for="wh-url">URL</label>
          <input
            id="wh-url"
            type="url"
            value={url}
            placeholder="https://bot.example/webhooks/twitch"
            autoComplete="off"
            onInput={(ev) => setUrl((ev.target as HTMLInputElement).value)}
          />
        </div>
        <SecretField id="wh-secret" label="Secret" value={secret} setValue={setSecret} />
        <div class="field">
          <label for="wh-broadcaster">Only broadcaster (optional)</label>
          <input
            id="wh-broadcaster"
            value={broadcaster}
            inputMode="numeric"
            placeholder="broadcaster_user_id"
            autoComplete="off"
            onInput={(ev) => setBroadcaster((ev.target as HTMLInputElement).value)}
          />
        </div>
      </div>
      <TypePicker key={generation} idPrefix="wh-add-type" catalog={catalog} chosen={types} setChosen={setTypes} />
      {error && (
        <p class="notice error" role="alert" id="wh-add-err">
          {error}
        </p>
      )}
      {added && <Notice kind="ok">{added}</Notice>}
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Sending the challenge…" : "Add target"}
        </button>
      </div>
    </form>
  );
}

function EditTarget({
  t,
  catalog,
  onSaved,
  onCancel,
}: {
  t: WebhookTarget;
  catalog: CatalogType[];
  onSaved: (t: WebhookTarget) => void;
  onCancel: () => void;
}) {
  const [url, setUrl] = useState(t.url);
  const [secret, setSecret] = useState("");
  const [types, setTypes] = useState<string[]>(t.event_types);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = `wh-edit-${t.id}`;
  const save = async (ev: Event) => {
    ev.preventDefault();
    const body: Record<string, unknown> = {};
    if (url.trim() !== t.url) body.url = url.trim();
    if (secret) {
      if (secret.length < 10 || secret.length > 100) return setError("The secret must be 10 to 100 characters.");
      body.secret = secret;
    }
    const sameTypes = types.length === t.event_types.length && types.every((x) => t.event_types.includes(x));
    if (!sameTypes) body.event_types = types;
    if (Object.keys(body).length === 0) return onCancel();
    setBusy(true);
    setError(null);
    try {
      onSaved(await api<WebhookTarget>(`/api/v1/webhook-targets/${encodeURIComponent(t.id)}`, { method: "PATCH", body }));
    } catch (e) {
      setError(refusal(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="wh-edit" aria-label={`Edit ${t.name}`} onSubmit={save} noValidate>
      <div class="fields">
        <div class="field wide">
          <label for={`${id}-url`}>URL</label>
          <input id={`${id}-url`} type="url" value={url} autoComplete="off" onInput={(ev) => setUrl((ev.target as HTMLInputElement).value)} />
        </div>
        <SecretField id={`${id}-secret`} label="New secret" value={secret} setValue={setSecret} hint="Leave empty to keep the current secret." />
      </div>
      <TypePicker idPrefix={`${id}-type`} catalog={catalog} chosen={types} setChosen={setTypes} />
      {error && (
        <p class="notice error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button type="submit" class="primary small" disabled={busy}>
          {busy ? "Saving…" : "Save"}
        </button>
        <button type="button" class="small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function TargetItem({
  t,
  catalog,
  onChanged,
  onRemoved,
}: {
  t: WebhookTarget;
  catalog: CatalogType[];
  onChanged: (t: WebhookTarget) => void;
  onRemoved: (id: string) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [level, words] = targetWords(t);
  const path = `/api/v1/webhook-targets/${encodeURIComponent(t.id)}`;
  const setPaused = async (paused: boolean) => {
    setBusy(true);
    setError(null);
    try {
      onChanged(await api<WebhookTarget>(path, { method: "PATCH", body: { paused } }));
    } catch (e) {
      setError(`${paused ? "Pausing" : "Resuming"} failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    setBusy(true);
    try {
      await api(path, { method: "DELETE" });
      onRemoved(t.id);
    } catch (e) {
      setConfirming(false);
      setError(`Deleting failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };
  const broadcaster = t.conditions?.broadcaster_user_id;
  return (
    <li class={`card streamer wh-target wh-${t.status}`} aria-labelledby={`wh-${t.id}-h`} data-target={t.name}>
      <div class="streamer-head">
        <h2 id={`wh-${t.id}-h`}>{t.name}</h2>
        <span class="wh-state" data-status={t.status}>
          <Dot level={level}>{words}</Dot>
        </span>
      </div>
      <p class="small-text">
        <code class="wh-url">{t.url}</code>
      </p>
      <dl class="facts">
        <div>
          <dt>Types</dt>
          <dd>{t.event_types.length ? t.event_types.join(", ") : "all"}</dd>
        </div>
        {broadcaster && (
          <div>
            <dt>Broadcaster</dt>
            <dd>{broadcaster}</dd>
          </div>
        )}
        <div>
          <dt>Backlog</dt>
          <dd class="wh-backlog">{t.backlog}</dd>
        </div>
        <div>
          <dt>Delivered</dt>
          <dd class="wh-delivered">{t.delivered}</dd>
        </div>
        <div>
          <dt>Failed attempts</dt>
          <dd class="wh-failed">{t.failed_attempts}</dd>
        </div>
        <div>
          <dt>Last success</dt>
          <dd title={when(t.last_success_at)}>{ago(t.last_success_at)}</dd>
        </div>
        {t.next_attempt_at && (
          <div>
            <dt>Next attempt</dt>
            <dd title={when(t.next_attempt_at)}>{ago(t.next_attempt_at)}</dd>
          </div>
        )}
        {!t.secret_set && (
          <div>
            <dt>Secret</dt>
            <dd class="err-text">not set</dd>
          </div>
        )}
      </dl>
      {t.last_error && (
        <p class={t.status === "enabled" ? "muted small-text" : "err-text small-text"}>
          Last error{t.last_attempt_at ? ` (${ago(t.last_attempt_at)})` : ""}: <span class="wh-error">{t.last_error}</span>
        </p>
      )}
      {error && <Notice kind="error">{error}</Notice>}
      {editing ? (
        <EditTarget
          t={t}
          catalog={catalog}
          onSaved={(n) => {
            onChanged(n);
            setEditing(false);
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <div class="row">
          {t.status === "paused" ? (
            <button type="button" class="small" disabled={busy} onClick={() => setPaused(false)} aria-label={`Resume ${t.name}`}>
              Resume
            </button>
          ) : (
            <button type="button" class="small" disabled={busy} onClick={() => setPaused(true)} aria-label={`Pause ${t.name}`}>
              Pause
            </button>
          )}
          <button type="button" class="small" onClick={() => setEditing(true)} aria-label={`Edit ${t.name}`}>
            Edit
          </button>
          {confirming ? (
            <>
              <button type="button" class="small danger" disabled={busy} onClick={remove}>
                Delete {t.name}
              </button>
              <button type="button" class="small" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" class="small danger" onClick={() => setConfirming(true)} aria-label={`Delete ${t.name}`}>
              Delete
            </button>
          )}
        </div>
      )}
    </li>
  );
}

export function Webhooks({ session, catalog }: { session: Session; catalog: CatalogType[] }) {
  const [targets, setTargets] = useState<WebhookTarget[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [unsupported, setUnsupported] = useState(false);
  const [announcement, setAnnouncement] = useState("");
  const admin = session.can("admin");
  const previous = useRef(new Map<string, string>());

  const load = useCallback(async () => {
    try {
      const { targets: list } = await api<{ targets: WebhookTarget[] }>("/api/v1/webhook-targets");
      // Say what changed state, not every refresh.
      const changed = list.filter((t) => {
        const before = previous.current.get(t.id);
        return before !== undefined && before !== t.status;
      });
      if (changed.length) setAnnouncement(changed.map((t) => `Webhook target ${t.name}: ${targetWords(t)[1]}`).join(" "));
      previous.current = new Map(list.map((t) => [t.id, t.status]));
      setTargets(list.slice().sort(byName));
      setLoadError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setUnsupported(true);
      else setLoadError(errorText(e));
    }
  }, []);

  // Read now, then every few seconds while the page is visible.
  useEffect(() => {
    if (!admin || unsupported) return;
    let timer: number | undefined;
    const tick = () => {
      window.clearTimeout(timer);
      if (document.visibilityState === "visible") void load().finally(() => (timer = window.setTimeout(tick, REFRESH_MS)));
    };
    const onVisible = () => document.visibilityState === "visible" && tick();
    tick();
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [admin, unsupported, load]);

  const upsert = (t: WebhookTarget) =>
    setTargets((l) => [...(l ?? []).filter((x) => x.id !== t.id), t].sort(byName));

  if (!admin) return <Notice kind="info">Webhook targets need an admin token.</Notice>;
  return (
    <section aria-labelledby="wh-h">
      <div class="view-head">
        <h1 id="wh-h">Webhooks</h1>
        {!unsupported && (
          <button type="button" onClick={() => void load()}>
            Refresh
          </button>
        )}
      </div>
      <p class="muted">
        TAU forwards events to these receivers as Twitch sends EventSub webhooks: Twitch's headers and an HMAC-SHA256 signature made
        with the target's secret, so an existing webhook handler verifies them unchanged. A receiver that is down gets each event
        again later, in order, with the same message id; one failing for hours is paused.
      </p>
      {unsupported ? (
        <Notice kind="info">
          This relay has no webhook forwarding yet (it does not know <code>/api/v1/webhook-targets</code>): update the relay.
        </Notice>
      ) : (
        <>
          <AddTarget catalog={catalog} onAdded={upsert} />
          {loadError && <Notice kind="error">Could not load the webhook targets: {loadError}</Notice>}
          {!targets && !loadError && <p class="muted">Loading…</p>}
          {targets && targets.length === 0 && <p class="empty">No webhook targets yet. Add one above.</p>}
          {targets && targets.length > 0 && (
            <ul class="streamers" aria-label="Webhook targets">
              {targets.map((t) => (
                <TargetItem key={t.id} t={t} catalog={catalog} onChanged={upsert} onRemoved={(id) => setTargets((l) => (l ?? []).filter((x) => x.id !== id))} />
              ))}
            </ul>
          )}
        </>
      )}
      <LiveRegion text={announcement} />
    </section>
  );
}
