// One chat bot in the Bots view: its state in words and a light (a colour
// is never the only sign), its channels with their join state, and for
// admins: give it a channel, take one away, remove the bot (asked twice).
import { useState } from "preact/hooks";
import { api, errorText } from "../api";
import { Dot, Notice, type Level } from "../components";
import { when } from "../render";
import type { ChatBot, ChatBotChannel } from "../types";

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
