// One chat bot in the Bots view: its state in words and a light (a colour
// is never the only sign), the state of its own chat session (EventSub
// WebSocket: connected, retrying and why, its subscriptions), its channels
// with their join state, and for admins: give it a channel, take one away,
// remove the bot (asked twice).
import { useState } from "preact/hooks";
import { api, errorText } from "../api";
import { Dot, Notice, type Level } from "../components";
import { when } from "../render";
import type { BotSession, ChatBot, ChatBotChannel } from "../types";

/** The bot's state as a light and words (what to do about it included). */
export function botStatusWords(b: ChatBot): [Level, string] {
  switch (b.status) {
    case "ready":
      return b.connected ? ["ok", "Ready: connected to chat"] : ["warn", "Ready, not connected to chat yet"];
    case "token_invalid":
      return ["bad", "Token invalid: add it again"];
    case "scope_missing":
      return ["warn", "Scope missing: add it again to grant it"];
    default:
      return ["warn", b.status.replace(/_/g, " ")];
  }
}

/** The bot's chat session as a light and words. */
export function sessionWords(s: BotSession): [Level, string] {
  const subs = s.subscriptions.length;
  const off = s.subscriptions.filter((x) => x.status !== "enabled").length;
  switch (s.state) {
    case "connected":
      return off
        ? ["warn", `Chat session connected; ${off} of ${subs} subscription(s) not enabled`]
        : ["ok", `Chat session connected; ${subs} subscription(s) enabled`];
    case "connecting":
      return ["warn", "Chat session connecting…"];
    case "reconnecting":
      return ["warn", "Chat session moving to a new Twitch server…"];
    case "backoff":
      return ["bad", "Chat session down; retrying shortly"];
    case "standby":
      return ["off", "Chat session held by another relay replica"];
    default:
      return ["warn", `Chat session ${s.state.replace(/_/g, " ")}`];
  }
}

function SessionState({ session: s, name }: { session: BotSession; name: string }) {
  const [level, words] = sessionWords(s);
  const channelOf = (c: Record<string, unknown>) => String(c.broadcaster_user_id ?? "");
  return (
    <div class="bot-session" aria-label={`Chat session of ${name}`} role="group">
      <Dot level={level}>{words}</Dot>
      {s.last_error && (
        <p class={level === "bad" ? "err-text" : "muted small-text"}>
          {level === "bad" ? "Why: " : "Last problem: "}
          {s.last_error}
        </p>
      )}
      {(s.session_id || s.subscriptions.length > 0) && (
        <details>
          <summary>Session details</summary>
          <p class="muted small-text">
            {s.session_id ? `Session ${s.session_id}` : "No session now"}
            {s.connected_at ? ` · since ${when(s.connected_at)}` : ""}
          </p>
          <ul class="bot-subs">
            {s.subscriptions.map((x, i) => (
              <li key={x.id || `${x.type}-${i}`}>
                <code>{x.type}</code> (channel {channelOf(x.condition)}):{" "}
                <span class={x.status === "enabled" ? "" : "err-text"}>{x.status.replace(/_/g, " ")}</span>
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

const CHANNEL_WORDS: Record<string, [Level, string]> = {
  joined: ["ok", "Joined"],
  pending: ["warn", "Joining…"],
  failed: ["bad", "Failed"],
};

export function BotItem({
  bot: b,
  channels,
  admin,
  onChannelAdded,
  onChannelRemoved,
  onRemoved,
}: {
  bot: ChatBot;
  channels: ChatBotChannel[];
  admin: boolean;
  onChannelAdded: (c: ChatBotChannel) => void;
  onChannelRemoved: (id: string) => void;
  onRemoved: (id: string) => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const name = b.user_name || b.user_login;
  const headId = `bot-${b.id}`;
  const [level, words] = botStatusWords(b);

  const del = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/chat-bots/${encodeURIComponent(b.id)}`, { method: "DELETE" });
      onRemoved(b.id);
    } catch (e) {
      setConfirming(false);
      setBusy(false);
      setError(`Could not remove ${name}: ${errorText(e)}`);
    }
  };

  return (
    <li class={`card streamer bot ${level}`} aria-labelledby={headId}>
      <div class="streamer-head">
        <h2 id={headId}>{name}</h2>
        <Dot level={level}>{words}</Dot>
      </div>
      {b.reason && <p class={level === "ok" ? "muted" : "err-text"}>{b.reason}</p>}
      <p class="muted small-text">
        Login {b.user_login} · Twitch ID {b.user_id} · added {when(b.created)}
        {b.scopes.length ? ` · scopes: ${b.scopes.join(", ")}` : ""}
      </p>
      {b.session && <SessionState session={b.session} name={name} />}
      <h3 class="bot-channels-h">Channels</h3>
      {channels.length === 0 ? (
        <p class="empty">No channels yet.{admin ? " Add one below." : ""}</p>
      ) : (
        <ul class="bot-channels" aria-label={`Channels of ${name}`}>
          {channels.map((c) => (
            <ChannelItem key={c.id} channel={c} botName={name} admin={admin} onRemoved={onChannelRemoved} />
          ))}
        </ul>
      )}
      {admin && <AddChannel bot={b} name={name} onAdded={onChannelAdded} />}
      {admin && (
        <div class="row">
          {!confirming && (
            <button type="button" class="small danger" disabled={busy} onClick={() => setConfirming(true)} aria-label={`Remove bot ${name}`}>
              Remove bot
            </button>
          )}
          {confirming && (
            <span class="row" role="group" aria-label={`Remove ${name}?`}>
              <span>Remove {name}? TAU forgets its token and leaves its channels.</span>
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
    </li>
  );
}

function ChannelItem({
  channel: c,
  botName,
  admin,
  onRemoved,
}: {
  channel: ChatBotChannel;
  botName: string;
  admin: boolean;
  onRemoved: (id: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [level, words] = CHANNEL_WORDS[c.status] ?? ["warn", c.status];
  const label = `#${c.channel.replace(/^#/, "")}`;
  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/chat-bots/channels/${encodeURIComponent(c.id)}`, { method: "DELETE" });
      onRemoved(c.id);
    } catch (e) {
      setBusy(false);
      setError(`Could not remove ${label}: ${errorText(e)}`);
    }
  };
  return (
    <li>
      <span class="bot-channel-name">{label}</span> <Dot level={level}>{words}</Dot>
      {c.reason && <span class={c.status === "failed" ? "err-text" : "muted"}> {c.reason}</span>}
      {admin && (
        <>
          {" "}
          <button type="button" class="small" disabled={busy} onClick={remove} aria-label={`Remove channel ${label} from ${botName}`}>
            Remove
          </button>
        </>
      )}
      {error && <Notice kind="error">{error}</Notice>}
    </li>
  );
}

function AddChannel({ bot, name, onAdded }: { bot: ChatBot; name: string; onAdded: (c: ChatBotChannel) => void }) {
  const [login, setLogin] = useState("");
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const inputId = `bot-channel-${bot.id}`;
  return (
    <form
      class="add-row row bot-add-channel"
      aria-label={`Add a channel to ${name}`}
      onSubmit={async (ev) => {
        ev.preventDefault();
        const channel = login.trim().replace(/^#/, "");
        if (!channel) {
          setMsg({ kind: "error", text: "Enter a channel's Twitch login." });
          return;
        }
        setBusy(true);
        setMsg(null);
        try {
          const c = await api<ChatBotChannel>("/api/v1/chat-bots/channels", { method: "POST", body: { channel, chat_bot: bot.id } });
          onAdded(c);
          setLogin("");
          setMsg({ kind: "ok", text: `${name} joins #${channel}.` });
        } catch (e) {
          setMsg({ kind: "error", text: `Could not add #${channel}: ${errorText(e)}` });
        } finally {
          setBusy(false);
        }
      }}
    >
      <div class="field grow">
        <label for={inputId}>Channel login</label>
        <input
          id={inputId}
          type="text"
          value={login}
          placeholder="the channel's login"
          autocomplete="off"
          onInput={(ev) => setLogin((ev.target as HTMLInputElement).value)}
        />
      </div>
      <button type="submit" disabled={busy}>
        {busy ? "Adding…" : "Add channel"}
      </button>
      {msg && (
        <div class="bot-add-msg">
          <Notice kind={msg.kind}>{msg.text}</Notice>
        </div>
      )}
    </form>
  );
}
