import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, errorText } from "../api";
import { EventCard, Notice } from "../components";
import type { Session } from "../main";
import type { CatalogType, Json, Obj, TauEvent } from "../types";

interface Sample {
  event_type: string;
  subscription_type?: string;
  version?: string;
  event_data: Obj;
}

type Leaf = { path: string; value: Json };

/** The fields users change, in this order, when a sample has them. */
const PRIMARY = [
  "user_login",
  "user_name",
  "chatter_user_login",
  "chatter_user_name",
  "from_broadcaster_user_login",
  "from_broadcaster_user_name",
  "to_broadcaster_user_login",
  "to_broadcaster_user_name",
  "is_anonymous",
  "bits",
  "tier",
  "total",
  "cumulative_total",
  "cumulative_months",
  "is_gift",
  "message",
  "message.text",
  "system_message",
  "reward.title",
  "reward.cost",
  "user_input",
  "viewers",
  "viewer_count",
  "level",
  "progress",
  "goal",
  "type",
  "title",
  "category_name",
  "choices.0.title",
  "choices.1.title",
  "outcomes.0.title",
  "outcomes.1.title",
  "top_contributions.0.user_login",
  "top_contributions.0.user_name",
  "top_contributions.0.total",
  "charity_name",
  "amount.value",
  "duration_seconds",
  "reason",
  "description",
  "current_amount",
  "target_amount",
];

function leaves(v: Json, prefix: string, out: Leaf[]): Leaf[] {
  if (v !== null && typeof v === "object") {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
    for (const [k, x] of entries) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.push({ path: prefix, value: v });
  }
  return out;
}

function setPath(root: Obj, path: string, value: Json) {
  const keys = path.split(".");
  let cur: Json = root;
  for (const k of keys.slice(0, -1)) {
    cur = (cur as Record<string, Json>)[k];
    if (cur === null || typeof cur !== "object") return;
  }
  (cur as Record<string, Json>)[keys[keys.length - 1]] = value;
}

function labelOf(path: string): string {
  return path
    .split(".")
    .map((p) => (/^\d+$/.test(p) ? `#${Number(p) + 1}` : p.replace(/_/g, " ")))
    .join(" › ")
    .replace(/^./, (c) => c.toUpperCase());
}

function fieldId(path: string) {
  return "f-" + path.replace(/[^a-zA-Z0-9]/g, "-");
}

export function TestEvents({ catalog, session }: { catalog: CatalogType[]; session: Session }) {
  const [search, setSearch] = useState("");
  const [type, setType] = useState(() => new URLSearchParams(location.hash.split("?")[1] ?? "").get("type") ?? "");
  const [sample, setSample] = useState<Sample | null>(null);
  const [sampleState, setSampleState] = useState<"idle" | "loading" | "none" | "error">("idle");
  const [sampleError, setSampleError] = useState("");
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [sending, setSending] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string; event?: TauEvent } | null>(null);
  const [lastBody, setLastBody] = useState<{ type: string; raw: string } | null>(null);

  const sorted = useMemo(
    () => [...catalog].sort((a, b) => Number(b.active) - Number(a.active) || a.event_type.localeCompare(b.event_type)),
    [catalog],
  );
  const q = search.trim().toLowerCase();
  const matches = sorted.filter(
    (c) => !q || c.event_type.toLowerCase().includes(q) || c.name.toLowerCase().includes(q) || c.description.toLowerCase().includes(q),
  );
  // Several versions of one type share an event_type: list each once.
  const unique = matches.filter((c, i) => matches.findIndex((d) => d.event_type === c.event_type) === i);
  const active = unique.filter((c) => c.active);
  const other = unique.filter((c) => !c.active);
  const entry = catalog.find((c) => c.event_type === type);

  useEffect(() => {
    const onHash = () => {
      const t = new URLSearchParams(location.hash.split("?")[1] ?? "").get("type");
      if (t) setType(t);
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (!type && sorted.length) setType((sorted.find((c) => c.event_type === "channel-follow") ?? sorted[0]).event_type);
  }, [sorted, type]);

  useEffect(() => {
    if (!type) return;
    let live = true;
    setSampleState("loading");
    setResult(null);
    api<Sample>(`/api/v1/twitch-events/${encodeURIComponent(type)}/test`).then(
      (s) => {
        if (!live) return;
        setSample(s);
        setValues({});
        setSampleState("idle");
      },
      (e) => {
        if (!live) return;
        setSample(null);
        if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setSampleState("none");
        else {
          setSampleState("error");
          setSampleError(errorText(e));
        }
      },
    );
    return () => {
      live = false;
    };
  }, [type]);

  const all = useMemo(() => (sample ? leaves(sample.event_data, "", []) : []), [sample]);
  const primary = PRIMARY.map((p) => all.find((l) => l.path === p)).filter((l): l is Leaf => !!l);
  const rest = all.filter((l) => !PRIMARY.includes(l.path));

  const current = (l: Leaf): string | boolean =>
    values[l.path] ?? (typeof l.value === "boolean" ? l.value : l.value === null ? "" : String(l.value));

  const build = (): { body?: Obj; error?: string } => {
    if (!sample) return {};
    const body = JSON.parse(JSON.stringify(sample.event_data)) as Obj;
    for (const l of all) {
      const v = values[l.path];
      if (v === undefined) continue;
      if (typeof l.value === "number") {
        const n = Number(v);
        if (v === "" || !Number.isFinite(n)) return { error: `${labelOf(l.path)} must be a number` };
        setPath(body, l.path, n);
      } else if (typeof l.value === "boolean") setPath(body, l.path, Boolean(v));
      else if (l.value === null) setPath(body, l.path, v === "" ? null : String(v));
      else setPath(body, l.path, String(v));
    }
    return { body };
  };

  const send = async (raw: string | null) => {
    let payload = raw;
    if (payload === null) {
      const b = build();
      if (b.error) {
        setResult({ ok: false, text: b.error });
        return;
      }
      payload = b.body ? JSON.stringify(b.body) : "";
    }
    setSending(true);
    try {
      const sent = await api<TauEvent>(`/api/v1/twitch-events/${encodeURIComponent(type)}/test`, {
        method: "POST",
        raw: payload || undefined,
      });
      setLastBody({ type, raw: payload });
      setResult({
        ok: true,
        text: `Sent a test ${type} event to every connected client at ${new Date().toLocaleTimeString()}.`,
        event: sent && typeof sent === "object" && "event_type" in sent ? sent : undefined,
      });
    } catch (e) {
      setResult({ ok: false, text: `Not sent: ${errorText(e)}` });
    } finally {
      setSending(false);
    }
  };

  const input = (l: Leaf) => {
    const id = fieldId(l.path);
    const v = current(l);
    const set = (x: string | boolean) => setValues({ ...values, [l.path]: x });
    const last = l.path.split(".").pop();
    if (typeof l.value === "boolean")
      return (
        <div class="field check" key={l.path}>
          <input id={id} type="checkbox" checked={Boolean(v)} onChange={(ev) => set((ev.target as HTMLInputElement).checked)} />
          <label for={id}>{labelOf(l.path)}</label>
        </div>
      );
    if (last === "tier")
      return (
        <div class="field" key={l.path}>
          <label for={id}>{labelOf(l.path)}</label>
          <select id={id} value={String(v)} onChange={(ev) => set((ev.target as HTMLSelectElement).value)}>
            <option value="1000">Tier 1 (1000)</option>
            <option value="2000">Tier 2 (2000)</option>
            <option value="3000">Tier 3 (3000)</option>
            {!["1000", "2000", "3000"].includes(String(v)) && <option value={String(v)}>{String(v)}</option>}
          </select>
        </div>
      );
    const long = typeof l.value === "string" && (last === "text" || last === "message" || last === "user_input" || l.value.length > 60);
    return (
      <div class={`field${long ? " wide" : ""}`} key={l.path}>
        <label for={id}>{labelOf(l.path)}</label>
        {long ? (
          <textarea id={id} rows={2} value={String(v)} onInput={(ev) => set((ev.target as HTMLTextAreaElement).value)} />
        ) : (
          <input
            id={id}
            type={typeof l.value === "number" ? "number" : "text"}
            step={typeof l.value === "number" && !Number.isInteger(l.value) ? "any" : undefined}
            value={String(v)}
            placeholder={l.value === null ? "empty (null)" : undefined}
            onInput={(ev) => set((ev.target as HTMLInputElement).value)}
          />
        )}
      </div>
    );
  };

  if (!session.can("bot")) return <Notice kind="info">Test events need a bot or admin token.</Notice>;

  return (
    <section aria-labelledby="test-h">
      <div class="view-head">
        <h1 id="test-h">Test events</h1>
      </div>
      <p class="muted">
        A test event goes to every connected bot and overlay with origin “test”; it is not stored in History.
      </p>
      <div class="picker">
        <label>
          Find a type
          <input type="search" value={search} placeholder="follow, cheer, hype…" onInput={(ev) => setSearch((ev.target as HTMLInputElement).value)} />
        </label>
        <div class="field">
          <label for="test-type">Event type</label>
          <select id="test-type"
            value={type}
            onChange={(ev) => {
              const t = (ev.target as HTMLSelectElement).value;
              setType(t);
              history.replaceState(null, "", `#/test?type=${encodeURIComponent(t)}`);
            }}
          >
            {entry && !unique.includes(entry) && <option value={entry.event_type}>{entry.event_type}</option>}
            {active.length > 0 && (
              <optgroup label="Subscribed by default">
                {active.map((c) => (
                  <option key={c.event_type} value={c.event_type}>
                    {c.event_type}
                  </option>
                ))}
              </optgroup>
            )}
            {other.length > 0 && (
              <optgroup label="Other types">
                {other.map((c) => (
                  <option key={c.event_type} value={c.event_type}>
                    {c.event_type}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        </div>
        <span class="muted small-text">{unique.length} types match</span>
      </div>
      {entry && (
        <p class="muted small-text">
          {entry.name} v{entry.version}: {entry.description}
        </p>
      )}
      {sampleState === "loading" && <p class="muted">Loading a sample…</p>}
      {sampleState === "error" && <Notice kind="error">Could not load a sample: {sampleError}</Notice>}
      {sampleState === "none" && (
        <div class="card">
          <p>This relay cannot show a sample for {type} to edit. It can still send a realistic generated one.</p>
          <button type="button" class="primary" disabled={sending} onClick={() => send("")}>
            Send sample as is
          </button>
        </div>
      )}
      {sample && sampleState === "idle" && (
        <form
          class="card test-form"
          aria-label={`Test ${type}`}
          onSubmit={(ev) => {
            ev.preventDefault();
            void send(null);
          }}
        >
          <fieldset>
            <legend>Main fields</legend>
            <div class="fields">{primary.length ? primary.map(input) : <p class="muted">This type has no commonly changed fields; see More fields.</p>}</div>
          </fieldset>
          {rest.length > 0 && (
            <details class="more">
              <summary>More fields ({rest.length})</summary>
              <div class="fields">{rest.map(input)}</div>
            </details>
          )}
          <div class="row">
            <button type="submit" class="primary" disabled={sending}>
              {sending ? "Sending…" : "Send test event"}
            </button>
            <button type="button" onClick={() => setValues({})}>
              Reset fields
            </button>
            <button type="button" disabled={sending} onClick={() => send("")}>
              Send a generated sample
            </button>
          </div>
        </form>
      )}
      {result && (
        <div class="result">
          <Notice kind={result.ok ? "ok" : "error"}>{result.text}</Notice>
          {result.ok && lastBody && (
            <button type="button" disabled={sending} onClick={() => send(lastBody.raw)}>
              Send the same again
            </button>
          )}
          {result.event && <EventCard event={result.event} canReplay={false} />}
        </div>
      )}
    </section>
  );
}
