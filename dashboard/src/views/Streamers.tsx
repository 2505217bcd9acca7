// Watched streamers: other channels whose stream.online/offline events the
// relay subscribes to (`/api/v1/streamers`). Anyone may read the list;
// admins add, disable and remove. A streamer's live state flips from the
// app's live socket (stream-online/offline), then the list is re-read so
// the relay's own record wins.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, errorText } from "../api";
import { useLiveEvents } from "../bus";
import { Dot, Notice } from "../components";
import { when } from "../render";
import type { Session } from "../main";
import type { Page, Streamer } from "../types";
import { StreamList } from "./StreamList";

/** What a live event said about a streamer, until the relay's record is newer. */
type Seen = { streaming: boolean; created: string };

function isLive(s: Streamer, seen: Seen | undefined): boolean {
  if (seen && new Date(seen.created).getTime() >= new Date(s.updated).getTime()) return seen.streaming;
  return s.streaming;
}

export function Streamers({ session }: { session: Session }) {
  const [list, setList] = useState<Streamer[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [unsupported, setUnsupported] = useState(false);
  const [seen, setSeen] = useState<Record<string, Seen>>({});
  const [streamsTick, setStreamsTick] = useState<Record<string, number>>({});
  const admin = session.can("admin");
  const refetch = useRef<number[]>([]);

  const load = async () => {
    try {
      const page = await api<Page<Streamer>>("/api/v1/streamers");
      setList(page.results);
      setLoadError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setUnsupported(true);
      else setLoadError(errorText(e));
    }
  };
  useEffect(() => {
    void load();
    return () => refetch.current.forEach((t) => window.clearTimeout(t));
  }, []);

  useLiveEvents((e) => {
    if (e.event_type !== "stream-online" && e.event_type !== "stream-offline") return;
    // Test events and replays say nothing about the stream now.
    if (e.origin !== "twitch") return;
    const id = String(e.event_data?.broadcaster_user_id ?? "");
    if (!list?.some((s) => s.twitch_id === id)) return;
    setSeen((m) => ({ ...m, [id]: { streaming: e.event_type === "stream-online", created: e.created } }));
    // The relay records the stream after storing the event (and asks
    // Twitch for its details): read both again shortly, and once more later.
    const reread = () => {
      void load();
      setStreamsTick((t) => ({ ...t, [id]: (t[id] ?? 0) + 1 }));
    };
    refetch.current.forEach((t) => window.clearTimeout(t));
    refetch.current = [window.setTimeout(reread, 1500), window.setTimeout(reread, 5000)];
  });

  const replace = (s: Streamer) => setList((l) => (l ?? []).map((x) => (x.id === s.id ? s : x)));
  const remove = (id: string) => setList((l) => (l ?? []).filter((x) => x.id !== id));

  return (
    <section aria-labelledby="streamers-h">
      <div class="view-head">
        <h1 id="streamers-h">Streamers</h1>
        {!unsupported && (
          <button type="button" onClick={() => void load()}>
            Refresh
          </button>
        )}
      </div>
      <p class="muted">
        Other channels this relay watches: their <code>stream-online</code> and <code>stream-offline</code> events arrive on the same
        socket as the channel's own.
      </p>
      {unsupported ? (
        <Notice kind="info">
          This relay has no watched-streamers support yet (it does not know <code>/api/v1/streamers</code>): update the relay to watch
          other channels.
        </Notice>
      ) : (
        <>
          {admin && <AddStreamer onAdded={(s) => setList((l) => [s, ...(l ?? []).filter((x) => x.id !== s.id)])} />}
          {loadError && <Notice kind="error">Could not load the watched streamers: {loadError}</Notice>}
          {!list && !loadError && <p class="muted">Loading…</p>}
          {list && list.length === 0 && <p class="empty">No watched streamers yet.{admin ? " Add one by login above." : ""}</p>}
          {list && list.length > 0 && (
            <ul class="streamers" aria-label="Watched streamers">
              {list.map((s) => (
                <StreamerItem
                  key={s.id}
                  streamer={s}
                  live={isLive(s, seen[s.twitch_id])}
                  admin={admin}
                  streamsTick={streamsTick[s.twitch_id] ?? 0}
                  onChanged={replace}
                  onRemoved={remove}
                />
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function AddStreamer({ onAdded }: { onAdded: (s: Streamer) => void }) {
  const [login, setLogin] = useState("");
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  return (
    <form
      class="card add-streamer"
      aria-labelledby="add-streamer-h"
      onSubmit={async (ev) => {
        ev.preventDefault();
        const name = login.trim();
        if (!name) {
          setMsg({ kind: "error", text: "Enter a Twitch login." });
          return;
        }
        setBusy(true);
        setMsg(null);
        try {
          const s = await api<Streamer>("/api/v1/streamers", { method: "POST", body: { twitch_username: name } });
          onAdded(s);
          setLogin("");
          setMsg({ kind: "ok", text: `Now watching ${s.twitch_username}.` });
        } catch (e) {
          setMsg({ kind: "error", text: `Could not add ${name}: ${errorText(e)}` });
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 id="add-streamer-h">Watch a streamer</h2>
      <div class="row add-row">
        <label class="grow">
          Twitch login
          <input type="text" value={login} placeholder="their login name" autocomplete="off" onInput={(ev) => setLogin((ev.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Adding…" : "Add streamer"}
        </button>
      </div>
      <p class="muted small-text">
        On the EventSub WebSocket transport Twitch allows at most 5 watched streamers; webhook and conduit transports allow many more.
      </p>
      {msg && <Notice kind={msg.kind}>{msg.text}</Notice>}
    </form>
  );
}

function StreamerItem({
  streamer: s,
  live,
  admin,
  streamsTick,
  onChanged,
  onRemoved,
}: {
  streamer: Streamer;
  live: boolean;
  admin: boolean;
  streamsTick: number;
  onChanged: (s: Streamer) => void;
  onRemoved: (id: string) => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const managed = s.source === "spec";
  const headId = `streamer-${s.id}`;

  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      onChanged(await api<Streamer>(`/api/v1/streamers/${encodeURIComponent(s.id)}`, { method: "PATCH", body: { disabled: !s.disabled } }));
    } catch (e) {
      setError(`Could not ${s.disabled ? "enable" : "disable"} ${s.twitch_username}: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };
  const del = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/streamers/${encodeURIComponent(s.id)}`, { method: "DELETE" });
      onRemoved(s.id);
    } catch (e) {
      setConfirming(false);
      setBusy(false);
      setError(`Could not remove ${s.twitch_username}: ${errorText(e)}`);
    }
  };

  return (
    <li class={`card streamer${live && !s.disabled ? " live" : ""}`} aria-labelledby={headId}>
      <div class="streamer-head">
        <h2 id={headId}>{s.twitch_username}</h2>
        {s.disabled ? (
          <Dot level="off">Disabled: not watched</Dot>
        ) : live ? (
          <Dot level="ok">Live</Dot>
        ) : (
          <Dot level="off">Offline</Dot>
        )}
        {managed && <span class="badge managed">Managed by the TwitchChannel</span>}
      </div>
      <p class="muted small-text">
        Twitch ID {s.twitch_id} · watched since {when(s.created)}
        {managed ? " · set in the TwitchChannel's spec.streamers (or TAU_STREAMERS): remove it there" : ""}
      </p>
      {admin && (
        <div class="row">
          <button type="button" class="small" disabled={busy} onClick={toggle} aria-label={`${s.disabled ? "Enable" : "Disable"} ${s.twitch_username}`}>
            {s.disabled ? "Enable" : "Disable"}
          </button>
          {!managed && !confirming && (
            <button type="button" class="small danger" disabled={busy} onClick={() => setConfirming(true)} aria-label={`Remove ${s.twitch_username}`}>
              Remove
            </button>
          )}
          {confirming && (
            <span class="row" role="group" aria-label={`Remove ${s.twitch_username}?`}>
              <span>Remove {s.twitch_username} and its stream records?</span>
              <button type="button" class="small danger" disabled={busy} onClick={del}>
                Confirm remove
              </button>
              <button type="button" class="small" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </span>
          )}
        </div>
      )}
      {error && <Notice kind="error">{error}</Notice>}
      <details class="streams" onToggle={(ev) => setOpen((ev.currentTarget as HTMLDetailsElement).open)}>
        <summary>Recent streams of {s.twitch_username}</summary>
        {open && <StreamList streamerId={s.id} name={s.twitch_username} reload={streamsTick} />}
      </details>
    </li>
  );
}
