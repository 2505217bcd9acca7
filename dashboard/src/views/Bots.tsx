// Chat bots: separate Twitch accounts the relay reads and sends chat as
// (`/api/v1/chat-bots`). Bot tokens read the list; admins add a bot (the
// bot account's own consent on Twitch), give it channels and remove it.
// The list stays live from `/ws/chat-bots/status/` (one frame per bot and
// per change, its chat session's state included); channels are re-read
// when a bot changes, and every few seconds while one is still being joined.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, errorText, LiveSocket, type SocketState } from "../api";
import { CopyButton, Dot, LiveRegion, Notice, type Level } from "../components";
import type { Session } from "../main";
import type { ChatBot, ChatBotChannel, ChatBotFrame, Page } from "../types";
import { BotItem, botStatusWords, sessionWords } from "./BotItem";

const byName = (a: ChatBot, b: ChatBot) => a.user_login.localeCompare(b.user_login);

function socketWords(s: SocketState): [Level, string] {
  switch (s.kind) {
    case "open":
      return ["ok", "Live updates: on"];
    case "connecting":
    case "waiting":
      return ["warn", "Live updates: reconnecting (the list may be out of date)"];
    case "refused":
      return ["bad", `Live updates: refused (${s.reason})`];
    default:
      return ["off", "Live updates: off"];
  }
}

export function Bots({ session }: { session: Session }) {
  const [bots, setBots] = useState<ChatBot[] | null>(null);
  const [channels, setChannels] = useState<ChatBotChannel[]>([]);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [channelError, setChannelError] = useState<string | null>(null);
  const [unsupported, setUnsupported] = useState(false);
  const [sock, setSock] = useState<SocketState>({ kind: "stopped" });
  const [announcement, setAnnouncement] = useState("");
  const admin = session.can("admin");
  const reread = useRef<number | undefined>(undefined);

  const loadChannels = useCallback(async () => {
    try {
      setChannels(await api<ChatBotChannel[]>("/api/v1/chat-bots/channels"));
      setChannelError(null);
    } catch (e) {
      setChannelError(errorText(e));
    }
  }, []);
  const load = useCallback(async () => {
    try {
      const page = await api<Page<ChatBot>>("/api/v1/chat-bots");
      setBots(page.results.slice().sort(byName));
      setLoadError(null);
      await loadChannels();
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setUnsupported(true);
      else setLoadError(errorText(e));
      return !(e instanceof ApiError && e.status === 404);
    }
  }, [loadChannels]);

  // A bot's frame may mean its channels changed: read them again, once per burst.
  const channelsSoon = useCallback(() => {
    window.clearTimeout(reread.current);
    reread.current = window.setTimeout(() => void loadChannels(), 300);
  }, [loadChannels]);

  const onFrame = useCallback(
    (data: unknown) => {
      const f = data as ChatBotFrame;
      if (!f || typeof f !== "object" || !f.chatBot || typeof f.chatBot.id !== "string") return;
      const bot = f.chatBot;
      setBots((list) => {
        const old = (list ?? []).find((b) => b.id === bot.id);
        if (f.event === "Deleted") {
          if (old) setAnnouncement(`Chat bot ${bot.user_name || bot.user_login} removed.`);
          return (list ?? []).filter((b) => b.id !== bot.id);
        }
        if (!old) setAnnouncement(`Chat bot ${bot.user_name || bot.user_login} added: ${botStatusWords(bot)[1]}.`);
        else if (old.status !== bot.status || old.connected !== bot.connected)
          setAnnouncement(`Chat bot ${bot.user_name || bot.user_login}: ${botStatusWords(bot)[1]}.`);
        else if (bot.session && old.session?.state !== bot.session.state)
          setAnnouncement(`Chat bot ${bot.user_name || bot.user_login}: ${sessionWords(bot.session)[1]}.`);
        return [...(list ?? []).filter((b) => b.id !== bot.id), bot].sort(byName);
      });
      if (f.event === "Deleted") setChannels((cs) => cs.filter((c) => c.chat_bot !== bot.id));
      channelsSoon();
    },
    [channelsSoon],
  );

  // The list first (a relay without chat bots answers 404: no socket then),
  // then the live socket; every (re)connect reads the list again, so what
  // changed while it was down is not missed.
  useEffect(() => {
    let socket: LiveSocket | null = null;
    let live = true;
    void load().then((supported) => {
      if (!live || !supported) return;
      let wasOpen = false;
      socket = new LiveSocket("/ws/chat-bots/status/", () => ({}), onFrame, (st) => {
        setSock(st);
        if (st.kind === "open" && wasOpen) void load();
        if (st.kind === "open") wasOpen = true;
      });
      socket.start();
    });
    return () => {
      live = false;
      socket?.stop();
      window.clearTimeout(reread.current);
    };
  }, [load, onFrame]);

  // Twitch answers a join within seconds: look again while one is pending.
  const pending = channels.some((c) => c.status === "pending");
  useEffect(() => {
    if (!pending) return;
    const t = window.setInterval(() => void loadChannels(), 3000);
    return () => window.clearInterval(t);
  }, [pending, loadChannels]);

  const [sockLevel, sockText] = socketWords(sock);
  return (
    <section aria-labelledby="bots-h">
      <div class="view-head">
        <h1 id="bots-h">Bots</h1>
        {!unsupported && (
          <button type="button" onClick={() => void load()}>
            Refresh
          </button>
        )}
      </div>
      <p class="muted">
        A chat bot is a separate Twitch account that TAU reads and sends chat as, in the channels you give it. To add one, the bot
        account itself must give its consent on Twitch, not the broadcaster: open the consent page in a private window, or log out
        of Twitch first.
      </p>
      {unsupported ? (
        <Notice kind="info">
          This relay has no chat bot support yet (it does not know <code>/api/v1/chat-bots</code>): update the relay to add chat
          bots.
        </Notice>
      ) : (
        <>
          {admin && <AddBot />}
          <p class="small-text">
            <Dot level={sockLevel}>{sockText}</Dot>
          </p>
          {loadError && <Notice kind="error">Could not load the chat bots: {loadError}</Notice>}
          {channelError && <Notice kind="error">Could not load the bots' channels: {channelError}</Notice>}
          {!bots && !loadError && <p class="muted">Loading…</p>}
          {bots && bots.length === 0 && <p class="empty">No chat bots yet.{admin ? " Add one with “Add a bot” above." : ""}</p>}
          {bots && bots.length > 0 && (
            <ul class="streamers" aria-label="Chat bots">
              {bots.map((b) => (
                <BotItem
                  key={b.id}
                  bot={b}
                  channels={channels.filter((c) => c.chat_bot === b.id)}
                  admin={admin}
                  onChannelAdded={(c) => setChannels((cs) => [...cs.filter((x) => x.id !== c.id), c])}
                  onChannelRemoved={(id) => setChannels((cs) => cs.filter((x) => x.id !== id))}
                  onRemoved={(id) => setBots((l) => (l ?? []).filter((x) => x.id !== id))}
                />
              ))}
            </ul>
          )}
        </>
      )}
      <LiveRegion text={announcement} />
    </section>
  );
}

/**
 * "Add a bot": asks the relay for Twitch's consent link and opens it in a
 * new tab; the link stays on the page (with a copy button) for a private
 * window or when the browser blocked the tab.
 */
function AddBot() {
  const [link, setLink] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const { url } = await api<{ url: string }>("/api/v1/chat-bots/twitch-auth-link");
      setLink(url);
      window.open(url, "_blank", "noopener,noreferrer");
    } catch (e) {
      setLink(null);
      setError(`Could not get Twitch's consent link: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card" role="group" aria-labelledby="add-bot-h">
      <h2 id="add-bot-h">Add a chat bot</h2>
      <div class="row">
        <button type="button" class="primary" disabled={busy} onClick={start}>
          {busy ? "Asking the relay…" : "Add a bot"}
        </button>
      </div>
      {link && (
        <div class="bot-consent">
          <p>
            Twitch's consent page opened in a new tab (if the browser blocked it, use the link below). Log in there <b>as the bot account</b>, not as the broadcaster (Twitch
            remembers who is logged in: use a private window with the link below, or log out of Twitch first), and allow. The bot
            then shows up in the list below.
          </p>
          <div class="row">
            <a href={link} target="_blank" rel="noopener noreferrer">
              Open Twitch's consent page
            </a>
            <CopyButton text={link} label="Copy the consent link" />
          </div>
        </div>
      )}
      {error && <Notice kind="error">{error}</Notice>}
    </div>
  );
}
