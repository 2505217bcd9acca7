import { useEffect, useState } from "preact/hooks";
import { api, errorText, wsUrl } from "../api";
import { CopyButton, Notice } from "../components";
import { relative } from "../render";
import type { ApiToken, CatalogType, Role } from "../types";

const ROLES: { id: Role; words: string }[] = [
  { id: "overlay", words: "Overlay: live events and history, read only" },
  { id: "bot", words: "Bot: also replay, test events, status" },
  { id: "admin", words: "Admin: everything, including tokens and Twitch setup" },
];

function jsSnippet(url: string, token: string) {
  return `// npm: none needed in a browser; in Node 22+ WebSocket is built in
const ws = new WebSocket(${JSON.stringify(url)});
let last = null;
const token = ${JSON.stringify(token)};
// since: resume after the last event seen, so a reconnect misses nothing
ws.onopen = () => ws.send(JSON.stringify(last ? { token, since: last } : { token }));
ws.onmessage = (m) => {
  const e = JSON.parse(m.data);
  if (e.error) return console.error(e.error);
  if (e.id) last = e.id;
  console.log(e.event_type, e.event_data);
};`;
}

function pySnippet(url: string, token: string) {
  return `# pip install websockets
import asyncio, json, websockets

async def main():
    async with websockets.connect(${JSON.stringify(url)}) as ws:
        await ws.send(json.dumps({"token": ${JSON.stringify(token)}}))
        async for frame in ws:
            event = json.loads(frame)
            if "error" in event:
                raise SystemExit(event["error"])
            print(event["event_type"], event["event_data"])

asyncio.run(main())`;
}

function Created({ token, name, onDone }: { token: string; name: string; onDone: () => void }) {
  const url = wsUrl("/ws/twitch-events/");
  const js = jsSnippet(url, token);
  const py = pySnippet(url, token);
  return (
    <section class="card created" aria-labelledby="created-h">
      <h2 id="created-h">Token “{name}” created</h2>
      <Notice kind="info">Copy it now: it is shown only this once.</Notice>
      <div class="copy-line">
        <code class="secret">{token}</code>
        <CopyButton text={token} label="Copy token" />
      </div>
      <h3>Websocket URL</h3>
      <div class="copy-line">
        <code>{url}</code>
        <CopyButton text={url} label="Copy URL" />
      </div>
      <h3>Connect your bot</h3>
      <details open>
        <summary>JavaScript</summary>
        <pre class="snippet">{js}</pre>
        <CopyButton text={js} label="Copy JavaScript" />
      </details>
      <details>
        <summary>Python</summary>
        <pre class="snippet">{py}</pre>
        <CopyButton text={py} label="Copy Python" />
      </details>
      <div class="row">
        <button type="button" onClick={onDone}>
          Done, I stored it
        </button>
      </div>
    </section>
  );
}

function TokenRow({ t, onChanged, onError }: { t: ApiToken; onChanged: () => void; onError: (s: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [role, setRole] = useState<Role>(t.role);
  const changeRole = async (r: Role) => {
    setRole(r);
    try {
      await api(`/api/v1/tokens/${encodeURIComponent(t.id)}`, {
        method: "PATCH",
        body: r === "overlay" && t.event_types ? { role: r, event_types: t.event_types } : { role: r },
      });
      onChanged();
    } catch (e) {
      setRole(t.role);
      onError(`Could not change ${t.name}'s role: ${errorText(e)}`);
    }
  };
  const revoke = async () => {
    try {
      await api(`/api/v1/tokens/${encodeURIComponent(t.id)}`, { method: "DELETE" });
      onChanged();
    } catch (e) {
      setConfirming(false);
      onError(`Could not revoke ${t.name}: ${errorText(e)}`);
    }
  };
  const id = `role-${t.id}`;
  return (
    <tr>
      <th scope="row">
        {t.name}
        <div class="muted small-text">…{t.hint}</div>
      </th>
      <td data-label="Role">
        <label class="offscreen" for={id}>
          Role of {t.name}
        </label>
        <select id={id} value={role} onChange={(ev) => changeRole((ev.target as HTMLSelectElement).value as Role)}>
          {ROLES.map((r) => (
            <option key={r.id} value={r.id}>
              {r.id}
            </option>
          ))}
        </select>
        {t.event_types && <div class="muted small-text">only {t.event_types.join(", ")}</div>}
      </td>
      <td data-label="Created">{new Date(t.created_us / 1000).toLocaleDateString()}</td>
      <td data-label="Last used">{t.last_used_us ? relative(t.last_used_us / 1000) : "never"}</td>
      <td class="actions">
        {confirming ? (
          <div class="row">
            <button type="button" class="small danger" onClick={revoke}>
              Revoke {t.name}
            </button>
            <button type="button" class="small" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        ) : (
          <button type="button" class="small danger" onClick={() => setConfirming(true)} aria-label={`Revoke ${t.name}`}>
            Revoke
          </button>
        )}
      </td>
    </tr>
  );
}

export function Tokens({ catalog }: { catalog: CatalogType[] }) {
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("bot");
  const [types, setTypes] = useState<string[]>([]);
  const [typeFilter, setTypeFilter] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ token: string; name: string } | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    api<ApiToken[]>("/api/v1/tokens").then(
      (t) => {
        setTokens(t);
        setError(null);
      },
      (e) => setError(errorText(e)),
    );
  }, [tick]);

  const create = async (ev: Event) => {
    ev.preventDefault();
    const n = name.trim();
    if (!n) {
      setFormError("Give the token a name (e.g. the bot's name).");
      return;
    }
    if (tokens?.some((t) => t.name === n)) {
      setFormError(`A token named “${n}” exists already: choose another name.`);
      return;
    }
    setFormError(null);
    try {
      const body: Record<string, unknown> = { name: n, role };
      if (role === "overlay" && types.length) body.event_types = types;
      const r = await api<{ token: string; record: ApiToken }>("/api/v1/tokens", { method: "POST", body });
      setCreated({ token: r.token, name: r.record.name });
      setName("");
      setTypes([]);
      setTick(tick + 1);
    } catch (e) {
      setFormError(errorText(e));
    }
  };
  const allTypes = Array.from(new Set(catalog.map((c) => c.event_type))).sort();
  const shownTypes = allTypes.filter((t) => !typeFilter || t.includes(typeFilter.toLowerCase()));

  return (
    <section aria-labelledby="tokens-h">
      <h1 id="tokens-h">Tokens</h1>
      <p class="muted">Each bot, overlay or person gets its own token; revoking one closes its open connections at once.</p>
      {created && <Created token={created.token} name={created.name} onDone={() => setCreated(null)} />}
      <form class="card" aria-labelledby="new-token-h" onSubmit={create} noValidate>
        <h2 id="new-token-h">New token</h2>
        <div class="fields">
          <div class="field">
            <label for="tok-name">Name</label>
            <input
              id="tok-name"
              value={name}
              maxLength={100}
              autoComplete="off"
              aria-invalid={formError ? true : undefined}
              aria-describedby={formError ? "tok-err" : undefined}
              onInput={(ev) => setName((ev.target as HTMLInputElement).value)}
            />
          </div>
          <div class="field wide">
            <label for="tok-role">Role</label>
            <select id="tok-role" value={role} onChange={(ev) => setRole((ev.target as HTMLSelectElement).value as Role)}>
              {ROLES.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.words}
                </option>
              ))}
            </select>
          </div>
        </div>
        {role === "overlay" && (
          <details class="more">
            <summary>Limit to event types (optional; {types.length ? `${types.length} chosen` : "all types"})</summary>
            <label>
              Find
              <input type="search" value={typeFilter} onInput={(ev) => setTypeFilter((ev.target as HTMLInputElement).value)} />
            </label>
            <fieldset class="checks">
              <legend class="offscreen">Event types the overlay may see</legend>
              {shownTypes.map((t) => (
                <label key={t} class="check">
                  <input
                    type="checkbox"
                    checked={types.includes(t)}
                    onChange={(ev) =>
                      setTypes((ev.target as HTMLInputElement).checked ? [...types, t] : types.filter((x) => x !== t))
                    }
                  />
                  {t}
                </label>
              ))}
            </fieldset>
          </details>
        )}
        {formError && (
          <p id="tok-err" class="notice error" role="alert">
            {formError}
          </p>
        )}
        <div class="row">
          <button type="submit" class="primary">
            Create token
          </button>
        </div>
      </form>
      {error && <Notice kind="error">Could not list tokens: {error}</Notice>}
      {tokens && (
        <section class="card" aria-labelledby="tok-list-h">
          <h2 id="tok-list-h">Tokens ({tokens.length})</h2>
          <div class="table-wrap">
            <table class="stack">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="offscreen">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tokens.map((t) => (
                  <TokenRow key={t.id + t.role} t={t} onChanged={() => setTick((n) => n + 1)} onError={setError} />
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </section>
  );
}
