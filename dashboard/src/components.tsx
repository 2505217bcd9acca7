// Shared pieces: event cards, lights, copy buttons, notices.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { api, errorText } from "./api";
import { summarize, when } from "./render";
import type { TauEvent } from "./types";

/** Copies text, also where navigator.clipboard is missing (plain http). */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back */
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

export function CopyButton({ text, label = "Copy", name }: { text: string; label?: string; name?: string }) {
  const [done, setDone] = useState<string | null>(null);
  return (
    <button
      type="button"
      class="small"
      aria-label={name}
      onClick={async () => {
        const ok = await copyText(text);
        setDone(ok ? "Copied" : "Select and copy by hand");
        window.setTimeout(() => setDone(null), 2000);
      }}
    >
      {done ?? label}
    </button>
  );
}

export type Level = "ok" | "warn" | "bad" | "off";

export function Light({ level, label, children }: { level: Level; label: string; children: ComponentChildren }) {
  return (
    <span class={`light ${level}`} role="status" aria-label={label}>
      <span class="dot" aria-hidden="true" />
      <span class="light-text">{children}</span>
    </span>
  );
}

/** A dot and words for a status row (not a live region). */
export function Dot({ level, children }: { level: Level; children: ComponentChildren }) {
  return (
    <span class={`light ${level}`}>
      <span class="dot" aria-hidden="true" />
      <span>{children}</span>
    </span>
  );
}

export function Notice({ kind, children }: { kind: "error" | "ok" | "info"; children: ComponentChildren }) {
  return (
    <p class={`notice ${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </p>
  );
}

const ORIGIN_LABEL: Record<string, string> = { twitch: "Twitch", test: "Test", replay: "Replay" };

export function EventCard({
  event,
  canReplay,
  canDelete,
  onDeleted,
}: {
  event: TauEvent;
  canReplay: boolean;
  canDelete?: boolean;
  onDeleted?: (id: string) => void;
}) {
  const [msg, setMsg] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [confirming, setConfirming] = useState(false);
  const summary = summarize(event);
  const json = JSON.stringify(event, null, 2);
  const replay = async () => {
    try {
      await api(`/api/v1/twitch-events/${encodeURIComponent(event.id ?? "")}/replay`, { method: "POST" });
      setMsg({ kind: "ok", text: "Replayed to every client" });
    } catch (e) {
      setMsg({ kind: "error", text: `Replay failed: ${errorText(e)}` });
    }
  };
  const del = async () => {
    try {
      await api(`/api/v1/twitch-events/${encodeURIComponent(event.id ?? "")}`, { method: "DELETE" });
      onDeleted?.(event.id ?? "");
    } catch (e) {
      setConfirming(false);
      setMsg({ kind: "error", text: `Delete failed: ${errorText(e)}` });
    }
  };
  return (
    <article class={`event origin-${event.origin}`} data-event-type={event.event_type} aria-label={summary.title}>
      <header class="event-head">
        <span class={`badge origin ${event.origin}`}>{ORIGIN_LABEL[event.origin] ?? event.origin}</span>
        <code class="etype">{event.event_type}</code>
        <time dateTime={event.created} title={event.created}>
          {when(event.created)}
        </time>
      </header>
      <p class="event-title">{summary.title}</p>
      {summary.body}
      <div class="event-actions">
        {canReplay && event.id && (
          <button type="button" class="small" onClick={replay}>
            Replay
          </button>
        )}
        <CopyButton text={json} label="Copy JSON" />
        {canDelete && event.id && !confirming && (
          <button type="button" class="small danger" onClick={() => setConfirming(true)}>
            Delete
          </button>
        )}
        {confirming && (
          <>
            <button type="button" class="small danger" onClick={del}>
              Confirm delete
            </button>
            <button type="button" class="small" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </>
        )}
        {msg && (
          <span class={`inline-msg ${msg.kind}`} role={msg.kind === "error" ? "alert" : "status"}>
            {msg.text}
          </span>
        )}
      </div>
      <details class="payload">
        <summary>Payload</summary>
        <pre>{json}</pre>
      </details>
    </article>
  );
}

/**
 * A polite live region's text, rate-limited: at most one announcement per
 * 3 s, summing what came meanwhile (`many(n, latest)`), so a busy channel
 * does not flood a screen reader.
 */
export function useAnnouncer(one: (latest: string) => string, many: (n: number, latest: string) => string): [string, (latest: string) => void] {
  const [text, setText] = useState("");
  const words = useRef({ one, many });
  words.current = { one, many };
  const state = useRef<{ pending: number; latest: string; timer: number | undefined }>({ pending: 0, latest: "", timer: undefined });
  useEffect(() => () => window.clearTimeout(state.current.timer), []);
  const announce = useCallback((latest: string) => {
    const a = state.current;
    a.pending += 1;
    a.latest = latest;
    if (a.timer !== undefined) return;
    a.timer = window.setTimeout(() => {
      setText(a.pending === 1 ? words.current.one(a.latest) : words.current.many(a.pending, a.latest));
      a.pending = 0;
      a.timer = undefined;
    }, 3000);
  }, []);
  return [text, announce];
}

/** A polite, atomic live region off screen (what `useAnnouncer` says). */
export function LiveRegion({ text }: { text: string }) {
  return (
    <div class="offscreen" role="status" aria-live="polite" aria-atomic="true">
      {text}
    </div>
  );
}

/**
 * The filter fields History and Live share: an event type (with counts
 * when given) and a user.
 */
export function TypeUserFields({
  idPrefix,
  types,
  counts,
  type,
  setType,
  user,
  setUser,
}: {
  idPrefix: string;
  types: string[];
  counts?: Record<string, number>;
  type: string;
  setType: (t: string) => void;
  user: string;
  setUser: (u: string) => void;
}) {
  return (
    <>
      <div class="field">
        <label for={`${idPrefix}-type`}>Type</label>
        <select id={`${idPrefix}-type`} value={type} onChange={(ev) => setType((ev.target as HTMLSelectElement).value)}>
          <option value="">All types</option>
          {types.map((t) => (
            <option key={t} value={t}>
              {t}
              {counts?.[t] ? ` (${counts[t]})` : ""}
            </option>
          ))}
        </select>
      </div>
      <label>
        User
        <input type="search" value={user} placeholder="login or name" onInput={(ev) => setUser((ev.target as HTMLInputElement).value)} />
      </label>
    </>
  );
}
