// The Chat view's send box: who sends (`GET /api/v1/chat/senders`), to
// which channel, the message (Twitch's 500-character limit enforced while
// typing), and Twitch's verdict from `POST /api/v1/irc` in words. A chat
// bot's joined channels (`/api/v1/chat-bots`) are offered in the channel
// field when it is the sender.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, errorText } from "../api";
import type { ChatLine } from "../chatlog";
import { Notice } from "../components";
import type { ChatBot, ChatSender, ChatSendResult, Obj, Page } from "../types";

/** Twitch's limit for one chat message (characters, as Twitch counts them: code points). */
export const CHAT_MAX = 500;

const chars = (s: string): number => [...s].length;
const str = (v: unknown): string => (typeof v === "string" ? v : "");

type Outcome = { kind: "ok" | "error"; text: string };

function outcomeOf(r: ChatSendResult): Outcome {
  if (r.is_sent) {
    const badge = r.badge ? " Twitch shows the Chat Bot badge on it." : "";
    return { kind: "ok", text: `Sent to #${r.irc_channel.replace(/^#/, "")} as ${r.irc_username}.${badge}` };
  }
  const why = r.drop_reason ? `${r.drop_reason.message} (${r.drop_reason.code})` : "no reason given";
  return { kind: "error", text: `Twitch dropped the message: ${why}` };
}

export function SendBox({
  broadcaster,
  replyTo,
  clearReply,
}: {
  broadcaster: string | null;
  replyTo: ChatLine | null;
  clearReply: () => void;
}) {
  const [senders, setSenders] = useState<ChatSender[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [unsupported, setUnsupported] = useState(false);
  const [sender, setSender] = useState("");
  const [channel, setChannel] = useState("");
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const [botChannels, setBotChannels] = useState<Record<string, string[]>>({});

  useEffect(() => {
    let live = true;
    let retry: number | undefined;
    // While nobody can send (Twitch still connecting, a scope missing), ask
    // again every few seconds so the box comes alive without a reload.
    const load = () =>
      api<ChatSender[]>("/api/v1/chat/senders").then(
        (list) => {
          if (!live) return;
          setSenders(list);
          setLoadError(null);
          const pick = list.find((s) => s.kind === "broadcaster" && s.can_send) ?? list.find((s) => s.can_send) ?? list[0];
          setSender((current) => (list.some((s) => s.login === current && s.can_send) ? current : pick?.login ?? ""));
          if (!list.some((s) => s.can_send)) retry = window.setTimeout(load, 3000);
        },
        (e) => {
          if (!live) return;
          if (e instanceof ApiError && e.status === 404) setUnsupported(true);
          else {
            setLoadError(errorText(e));
            retry = window.setTimeout(load, 5000);
          }
        },
      );
    load();
    return () => {
      live = false;
      window.clearTimeout(retry);
    };
  }, []);

  useEffect(() => {
    if (replyTo) input.current?.focus();
  }, [replyTo]);

  // A bot chosen: read its joined channels again (they may have changed
  // on the Bots page) to suggest them. Only suggestions: errors stay quiet.
  const chosenKind = senders?.find((s) => s.login === sender)?.kind;
  useEffect(() => {
    if (chosenKind !== "bot") return;
    let live = true;
    api<Page<ChatBot>>("/api/v1/chat-bots").then(
      (page) => {
        if (live) setBotChannels(Object.fromEntries(page.results.map((b) => [b.user_login, b.channels])));
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [sender, chosenKind]);

  if (unsupported)
    return (
      <Notice kind="info">
        This relay has no chat support yet (it does not know <code>/api/v1/chat/senders</code>): update the relay to send chat from
        here.
      </Notice>
    );

  const chosen = senders?.find((s) => s.login === sender) ?? null;
  const count = chars(message);
  const reply = replyTo ? (replyTo.event.event_data as Obj) : null;
  const suggestions = chosen?.kind === "bot" ? (botChannels[chosen.login] ?? []) : [];
  const canSubmit = !busy && !!chosen?.can_send && message.trim().length > 0 && count <= CHAT_MAX;

  const send = async () => {
    if (!canSubmit) return;
    setBusy(true);
    setOutcome(null);
    const body: Record<string, string> = { message, irc_username: sender };
    if (channel.trim()) body.irc_channel = channel.trim().replace(/^#/, "");
    if (reply && str(reply.message_id)) body.reply_parent_message_id = str(reply.message_id);
    try {
      const r = await api<ChatSendResult>("/api/v1/irc", { method: "POST", body });
      setOutcome(outcomeOf(r));
      if (r.is_sent) {
        setMessage("");
        clearReply();
      }
    } catch (e) {
      setOutcome({ kind: "error", text: `Not sent: ${errorText(e)}` });
    } finally {
      setBusy(false);
      input.current?.focus();
    }
  };

  return (
    <form
      class="card chat-send"
      aria-labelledby="chat-send-h"
      onSubmit={(ev) => {
        ev.preventDefault();
        void send();
      }}
    >
      <h2 id="chat-send-h">Send a message</h2>
      {loadError && <Notice kind="error">Could not load who can send: {loadError}</Notice>}
      <div class="chat-send-fields">
        <div class="field">
          <label for="chat-sender">Send as</label>
          <select id="chat-sender" value={sender} disabled={!senders?.length} onChange={(ev) => setSender((ev.target as HTMLSelectElement).value)}>
            {!senders?.length && <option value="">{senders ? "no sender available" : "loading…"}</option>}
            {senders?.map((s) => (
              <option key={s.login} value={s.login} disabled={!s.can_send}>
                {s.display_name || s.login} ({s.kind}){s.can_send ? "" : ": cannot send"}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="chat-channel">Channel</label>
          <input
            id="chat-channel"
            type="text"
            value={channel}
            placeholder={broadcaster ?? "the broadcaster's"}
            aria-describedby="chat-channel-hint"
            autocomplete="off"
            list={suggestions.length ? "chat-channel-options" : undefined}
            onInput={(ev) => setChannel((ev.target as HTMLInputElement).value)}
          />
          {suggestions.length > 0 && (
            <datalist id="chat-channel-options">
              {suggestions.map((c) => (
                <option key={c} value={c} />
              ))}
            </datalist>
          )}
          <span id="chat-channel-hint" class="muted small-text">
            Empty: the broadcaster's channel{broadcaster ? ` (${broadcaster})` : ""}.
            {chosen?.kind === "bot" &&
              (suggestions.length
                ? ` ${chosen.display_name || chosen.login} has joined: ${suggestions.map((c) => `#${c}`).join(", ")}.`
                : ` ${chosen.display_name || chosen.login} has joined no channel yet (add one under Bots).`)}
          </span>
        </div>
      </div>
      {chosen && !chosen.can_send && (
        <Notice kind="error">
          {chosen.display_name || chosen.login} cannot send: {chosen.reason ?? "no reason given"}
        </Notice>
      )}
      {senders && senders.length > 0 && !senders.some((s) => s.can_send) && !chosen && (
        <Notice kind="error">No account can send chat yet.</Notice>
      )}
      {reply && (
        <p class="chat-replying">
          Replying to <b>{str(reply.chatter_user_name) || "a message"}</b>: {str((reply.message as Obj | undefined)?.text)}{" "}
          <button type="button" class="small" onClick={clearReply}>
            Cancel reply
          </button>
        </p>
      )}
      <div class="field">
        <label for="chat-message">Message</label>
        <div class="chat-send-row">
          <input
            id="chat-message"
            ref={input}
            type="text"
            value={message}
            autocomplete="off"
            aria-describedby="chat-count"
            onInput={(ev) => {
              const el = ev.target as HTMLInputElement;
              // Twitch refuses longer messages: cut at the limit while typing or pasting.
              const v = chars(el.value) > CHAT_MAX ? [...el.value].slice(0, CHAT_MAX).join("") : el.value;
              if (v !== el.value) el.value = v;
              setMessage(v);
            }}
          />
          <button type="submit" class="primary" disabled={!canSubmit}>
            {busy ? "Sending…" : "Send"}
          </button>
        </div>
        <span id="chat-count" class={`small-text ${count >= CHAT_MAX ? "err-text" : "muted"}`}>
          {count} / {CHAT_MAX} characters{count >= CHAT_MAX ? " (the limit)" : ""}. Enter sends.
        </span>
      </div>
      {outcome && <Notice kind={outcome.kind}>{outcome.text}</Notice>}
    </form>
  );
}
