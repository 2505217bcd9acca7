import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import "./style.css";
import { api, ApiError, errorText, getToken, LiveSocket, setToken, type SocketState } from "./api";
import { Light, LiveRegion, useAnnouncer, type Level } from "./components";
import { publishLiveEvent } from "./bus";
import { CHAT_TYPES, ChatLog } from "./chatlog";
import { summarize } from "./render";
import { ROLE_RANK, type CatalogType, type Role, type StatusDoc, type TauEvent, type WhoAmI } from "./types";
import { Login } from "./views/Login";
import { Live, type Feed } from "./views/Live";
import { TestEvents } from "./views/TestEvents";
import { History } from "./views/History";
import { Status } from "./views/Status";
import { Setup } from "./views/Setup";
import { Tokens } from "./views/Tokens";
import { Subscriptions } from "./views/Subscriptions";
import { Chat } from "./views/Chat";
import { Streamers } from "./views/Streamers";
import { Bots } from "./views/Bots";
import { Webhooks } from "./views/Webhooks";

const FEED_LIMIT = 500;

/** Takes a `#token=` login link's token and removes it from the address bar. */
function takeTokenFromHash(): boolean {
  const m = /^#token=([^&]*)/.exec(location.hash);
  if (!m) return false;
  const t = decodeURIComponent(m[1]).trim();
  history.replaceState(null, "", location.pathname + location.search + "#/live");
  if (t) setToken(t);
  return !!t;
}
takeTokenFromHash();

type View = "live" | "chat" | "test" | "history" | "streamers" | "bots" | "status" | "setup" | "tokens" | "webhooks" | "subscriptions";
const VIEWS: { id: View; label: string; min: Role }[] = [
  { id: "live", label: "Live", min: "overlay" },
  { id: "chat", label: "Chat", min: "overlay" },
  { id: "test", label: "Test events", min: "bot" },
  { id: "history", label: "History", min: "overlay" },
  { id: "streamers", label: "Streamers", min: "overlay" },
  { id: "bots", label: "Bots", min: "bot" },
  { id: "status", label: "Status", min: "bot" },
  { id: "setup", label: "Setup", min: "bot" },
  { id: "tokens", label: "Tokens", min: "admin" },
  { id: "webhooks", label: "Webhooks", min: "admin" },
  { id: "subscriptions", label: "Subscriptions", min: "bot" },
];

function routeFromHash(): View {
  const id = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
  return (VIEWS.find((v) => v.id === id)?.id ?? "live") as View;
}

type Theme = "auto" | "light" | "dark";
function applyTheme(t: Theme) {
  if (t === "auto") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.setAttribute("data-theme", t);
}
function storedTheme(): Theme {
  try {
    const t = localStorage.getItem("tau-theme");
    return t === "light" || t === "dark" ? t : "auto";
  } catch {
    return "auto";
  }
}
applyTheme(storedTheme());

export interface Session {
  me: WhoAmI | null; // null: the relay has no /whoami yet (role unknown)
  can: (min: Role) => boolean;
}

function App() {
  const [token, setTok] = useState(getToken());
  const [loginError, setLoginError] = useState<string | null>(null);
  const [me, setMe] = useState<WhoAmI | null | undefined>(undefined);
  const [view, setView] = useState<View>(routeFromHash());
  const [theme, setTheme] = useState<Theme>(storedTheme());
  const [menuOpen, setMenuOpen] = useState(false);

  const feedRef = useRef<Feed>({ events: [], buffer: [], counts: {}, paused: false, lastId: null, received: 0 });
  const chatRef = useRef(new ChatLog());
  const logout = useCallback((reason: string | null) => {
    // What this token saw is not for the next one.
    feedRef.current = { events: [], buffer: [], counts: {}, paused: false, lastId: null, received: 0 };
    chatRef.current = new ChatLog();
    setToken(null);
    setTok("");
    setMe(undefined);
    setLoginError(reason);
  }, []);

  useEffect(() => {
    const onHash = () => {
      if (takeTokenFromHash()) {
        setLoginError(null);
        setMe(undefined);
        setTok(getToken());
      }
      setView(routeFromHash());
      setMenuOpen(false);
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  // Who is this token? (Falls back to "unknown role" on relays without /whoami.)
  useEffect(() => {
    if (!token) return;
    let live = true;
    (async () => {
      try {
        const who = await api<WhoAmI>("/api/v1/whoami");
        if (live) setMe(who);
      } catch (e) {
        if (!live) return;
        if (e instanceof ApiError && e.status === 404) {
          try {
            await api("/api/v1/twitch-events?page_size=1");
            if (live) setMe(null);
          } catch (e2) {
            if (live && e2 instanceof ApiError && e2.status === 401) logout(`The relay refused this token: ${errorText(e2)}`);
            else if (live) setMe(null);
          }
        } else if (e instanceof ApiError && e.status === 401) {
          logout(`The relay refused this token: ${errorText(e)}`);
        } else {
          setMe(null);
        }
      }
    })();
    return () => {
      live = false;
    };
  }, [token, logout]);

  const session: Session = useMemo(
    // While the token is being checked (undefined) nothing is allowed, so
    // no view flashes up that the role then takes away; a relay without
    // whoami (null) is assumed to allow everything, as before.
    () => ({ me: me ?? null, can: (min: Role) => me === null || (me !== undefined && ROLE_RANK[me.role] >= ROLE_RANK[min]) }),
    [me],
  );

  // --- the live event socket (kept while switching views) ---
  const [relayState, setRelayState] = useState<SocketState>({ kind: "stopped" });
  const [, setFeedTick] = useState(0);
  const [announcement, announce] = useAnnouncer(
    (latest) => `New event: ${latest}`,
    (n, latest) => `${n} new events. Latest: ${latest}`,
  );
  // The Chat view announces chat lines itself (with its own pause).
  const viewRef = useRef(view);
  viewRef.current = view;

  const onEvent = useCallback(
    (data: unknown) => {
      const e = data as TauEvent;
      if (!e || typeof e !== "object" || typeof e.event_type !== "string") return;
      const f = feedRef.current;
      if (e.id) f.lastId = e.id;
      f.received += 1;
      f.counts = { ...f.counts, [e.event_type]: (f.counts[e.event_type] ?? 0) + 1 };
      if (f.paused) {
        f.buffer = [e, ...f.buffer].slice(0, FEED_LIMIT);
      } else {
        f.events = [e, ...f.events].slice(0, FEED_LIMIT);
        if (!(viewRef.current === "chat" && CHAT_TYPES.includes(e.event_type))) announce(summarize(e).title);
      }
      chatRef.current.add(e);
      publishLiveEvent(e);
      setFeedTick((n) => n + 1);
    },
    [announce],
  );

  const setPaused = useCallback((paused: boolean) => {
    const f = feedRef.current;
    f.paused = paused;
    if (!paused && f.buffer.length) {
      f.events = [...f.buffer, ...f.events].slice(0, FEED_LIMIT);
      f.buffer = [];
    }
    setFeedTick((n) => n + 1);
  }, []);
  const setChatPaused = useCallback((paused: boolean) => {
    chatRef.current.setPaused(paused);
    setFeedTick((n) => n + 1);
  }, []);
  const clearChat = useCallback(() => {
    chatRef.current.clear();
    setFeedTick((n) => n + 1);
  }, []);
  const clearFeed = useCallback(() => {
    const f = feedRef.current;
    f.events = [];
    f.buffer = [];
    f.counts = {};
    setFeedTick((n) => n + 1);
  }, []);

  useEffect(() => {
    if (!token || me === undefined) return;
    const s = new LiveSocket(
      "/ws/twitch-events/",
      () => (feedRef.current.lastId ? { since: feedRef.current.lastId } : {}),
      onEvent,
      (st) => {
        setRelayState(st);
        if (st.kind === "refused") logout(`The relay closed the live connection: ${st.reason}`);
      },
    );
    s.start();
    return () => s.stop();
  }, [token, me, onEvent, logout]);

  // --- the status socket (bot and admin tokens) ---
  const [status, setStatus] = useState<StatusDoc | null>(null);
  const [statusState, setStatusState] = useState<SocketState>({ kind: "stopped" });
  const statusAllowed = me !== undefined && session.can("bot");
  useEffect(() => {
    if (!token || !statusAllowed) return;
    const s = new LiveSocket("/ws/tau-status/", () => ({}), (d) => setStatus(d as StatusDoc), setStatusState);
    s.start();
    api<StatusDoc>("/api/v1/status").then(setStatus, () => undefined);
    return () => s.stop();
  }, [token, statusAllowed]);

  // --- the catalog, once (bot and admin tokens: overlays may not read it) ---
  const [catalog, setCatalog] = useState<CatalogType[]>([]);
  useEffect(() => {
    if (!token || !statusAllowed) return;
    api<CatalogType[]>("/api/v1/twitch/eventsub-subscriptions").then(setCatalog, () => undefined);
  }, [token, statusAllowed]);

  // Ticks once a second while something counts down.
  const [, setNow] = useState(0);
  useEffect(() => {
    const i = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(i);
  }, []);

  useEffect(() => {
    const label = VIEWS.find((v) => v.id === view)?.label ?? "";
    document.title = `${label} · TAU`;
  }, [view]);

  if (!token) {
    return (
      <Login
        error={loginError}
        onLogin={(t) => {
          setToken(t);
          setLoginError(null);
          setTok(t);
        }}
      />
    );
  }

  const visible = VIEWS.filter((v) => session.can(v.min));
  const current = visible.find((v) => v.id === view) ? view : "live";
  const [relayLevel, relayText] = relayWords(relayState);
  const [twitchLevel, twitchText] = statusAllowed ? twitchWords(status, statusState) : (["off", "Twitch: status needs a bot or admin token"] as [Level, string]);
  const nextTheme: Theme = theme === "auto" ? "light" : theme === "light" ? "dark" : "auto";

  return (
    <>
      <a class="skip" href="#main" onClick={(ev) => { ev.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">τ</span>
          <span>TAU</span>
          {me && (
            <span class="who" title={`Signed in with token “${me.name}”`}>
              {me.name} · {me.role}
            </span>
          )}
        </div>
        <div class="lights">
          <Light level={relayLevel} label="Relay connection">
            {relayText}
          </Light>
          <Light level={twitchLevel} label="Twitch connection">
            {twitchText}
          </Light>
        </div>
        <div class="top-actions">
          <button
            type="button"
            class="small"
            onClick={() => {
              setTheme(nextTheme);
              applyTheme(nextTheme);
              try {
                localStorage.setItem("tau-theme", nextTheme);
              } catch {
                /* ignore */
              }
            }}
            aria-label={`Theme: ${theme}. Switch to ${nextTheme}`}
            title={`Theme: ${theme} (click for ${nextTheme})`}
          >
            {theme === "auto" ? "◐ Auto" : theme === "light" ? "☀ Light" : "☾ Dark"}
          </button>
          <button type="button" class="small" onClick={() => logout(null)}>
            Log out
          </button>
          <button
            type="button"
            class="small menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="nav"
            onClick={() => setMenuOpen(!menuOpen)}
          >
            Menu
          </button>
        </div>
      </header>
      {/* Any link closes the phone menu, also the current view's (no hashchange then). */}
      <nav id="nav" class={menuOpen ? "open" : ""} aria-label="Views" onClick={(ev) => {
        if ((ev.target as Element).closest("a")) setMenuOpen(false);
      }}>
        <ul>
          {visible.map((v) => (
            <li key={v.id}>
              <a href={`#/${v.id}`} aria-current={current === v.id ? "page" : undefined}>
                {v.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {me === undefined ? (
          <p class="muted">Checking the token…</p>
        ) : current === "live" ? (
          <Live feed={feedRef.current} session={session} setPaused={setPaused} clear={clearFeed} catalog={catalog} />
        ) : current === "chat" ? (
          <Chat chat={chatRef.current} status={status} session={session} setPaused={setChatPaused} clear={clearChat} />
        ) : current === "streamers" ? (
          <Streamers session={session} />
        ) : current === "bots" ? (
          <Bots session={session} />
        ) : current === "test" ? (
          <TestEvents catalog={catalog} session={session} />
        ) : current === "history" ? (
          <History catalog={catalog} session={session} />
        ) : current === "status" ? (
          <Status status={status} statusState={statusState} />
        ) : current === "setup" ? (
          <Setup status={status} session={session} catalog={catalog} />
        ) : current === "tokens" ? (
          <Tokens catalog={catalog} />
        ) : current === "webhooks" ? (
          <Webhooks session={session} catalog={catalog} />
        ) : (
          <Subscriptions status={status} session={session} catalog={catalog} />
        )}
      </main>
      <LiveRegion text={announcement} />
    </>
  );
}

function relayWords(s: SocketState): [Level, string] {
  switch (s.kind) {
    case "open":
      return ["ok", "Relay: connected"];
    case "connecting":
      return ["warn", s.attempt ? "Relay: reconnecting…" : "Relay: connecting…"];
    case "waiting": {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      return ["bad", `Relay: offline, retrying in ${secs} s`];
    }
    case "refused":
      return ["bad", "Relay: token refused"];
    default:
      return ["off", "Relay: not connected"];
  }
}

export function twitchWords(s: StatusDoc | null, sock: SocketState): [Level, string] {
  if (!s) return ["off", sock.kind === "refused" ? "Twitch: status not allowed" : "Twitch: unknown yet"];
  const tw = s.twitch;
  const stale = sock.kind !== "open" ? " (last known)" : "";
  if (!tw.client_id_configured) return ["bad", "Twitch: not set up" + stale];
  if (tw.user_token.state === "missing" && tw.eventsub.transport !== "webhook")
    return ["bad", "Twitch: not authorized" + stale];
  if (tw.user_token.state === "authorization_needed") return ["bad", "Twitch: authorize again" + stale];
  const missing = (tw.user_token.scopes_missing ?? []).length > 0;
  switch (tw.eventsub.state) {
    case "connected":
      return missing ? ["warn", "Twitch: connected, scopes missing" + stale] : ["ok", "Twitch: connected" + stale];
    case "subscribed":
      return missing ? ["warn", "Twitch: subscribed, scopes missing" + stale] : ["ok", "Twitch: subscribed" + stale];
    case "error":
      return ["bad", "Twitch: failing" + stale];
    case "connecting":
      return ["warn", "Twitch: connecting" + stale];
    case "reconnecting":
      return ["warn", "Twitch: reconnecting" + stale];
    case "backoff":
      return ["bad", "Twitch: connection failing, retrying" + stale];
    case "waiting_for_authorization":
      return ["bad", "Twitch: waiting for authorization" + stale];
    case "waiting_for_credentials":
      return ["bad", "Twitch: no app credentials yet (see Setup)" + stale];
    case "disabled":
      return ["off", "Twitch: disabled" + stale];
    default:
      return ["warn", `Twitch: ${tw.eventsub.state.replace(/_/g, " ")}` + stale];
  }
}

render(<App />, document.getElementById("app")!);
