// The broadcaster's chat, as Twitch shows it: the log of the live socket's
// chat events (kept by the app in a ChatLog) and, for bot and admin
// tokens, a box that sends through `POST /api/v1/irc`.
import { useEffect, useRef, useState } from "preact/hooks";
import { useLiveEvents } from "../bus";
import { type ChatLine, type ChatLog } from "../chatlog";
import { LiveRegion, Notice, useAnnouncer } from "../components";
import { summarize } from "../render";
import type { Session } from "../main";
import type { StatusDoc } from "../types";
import { ChatLineView } from "./ChatLine";
import { SendBox } from "./ChatSend";

export function Chat({
  chat,
  status,
  session,
  setPaused,
  clear,
}: {
  chat: ChatLog;
  status: StatusDoc | null;
  session: Session;
  setPaused: (p: boolean) => void;
  clear: () => void;
}) {
  const [announcement, announce] = useAnnouncer(
    (latest) => `New chat message: ${latest}`,
    (n, latest) => `${n} new chat messages. Latest: ${latest}`,
  );
  useLiveEvents((e) => {
    if (!chat.paused && (e.event_type === "channel-chat-message" || e.event_type === "channel-chat-notification"))
      announce(summarize(e).title);
  });

  // Stays scrolled to the newest line unless the reader scrolled up.
  const logRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = logRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  const types = status?.twitch.event_types;
  const noChat = Array.isArray(types) && !types.includes("channel-chat-message");
  const canSend = session.can("bot");
  const [replyTo, setReplyTo] = useState<ChatLine | null>(null);

  return (
    <section aria-labelledby="chat-h">
      <div class="view-head">
        <h1 id="chat-h">Chat</h1>
        <div class="row">
          <button type="button" aria-pressed={chat.paused} onClick={() => setPaused(!chat.paused)}>
            {chat.paused ? `Resume (${chat.waiting.length} waiting)` : "Pause"}
          </button>
          <button type="button" onClick={clear}>
            Clear
          </button>
        </div>
      </div>
      {noChat && (
        <Notice kind="info">
          This relay does not receive chat: no chat event type is chosen. Choose <code>channel.chat.message</code> (and{" "}
          <code>channel.chat.notification</code>, <code>channel.chat.message_delete</code>, <code>channel.chat.clear</code>,{" "}
          <code>channel.chat.clear_user_messages</code>) under Event types in <a href="#/setup">Setup</a>.
        </Notice>
      )}
      <p class="muted small-text">
        {chat.paused ? `Paused: ${chat.waiting.length} new line(s) waiting. ` : ""}
        The newest {chat.lines.length} line(s) of this session (at most 500); stored chat events are in History.
      </p>
      <div
        ref={logRef}
        role="log"
        aria-label="Chat messages"
        aria-live="off"
        tabIndex={0}
        class="chat-log"
        onScroll={(ev) => {
          const el = ev.currentTarget as HTMLDivElement;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 40;
        }}
      >
        {chat.lines.length === 0 ? (
          <p class="empty">Waiting for chat. Messages appear here as Twitch sends them.</p>
        ) : (
          <ul class="chat-lines">
            {chat.lines.map((l) => (
              <ChatLineView key={l.key} line={l} onReply={canSend ? setReplyTo : undefined} />
            ))}
          </ul>
        )}
      </div>
      {canSend ? (
        <SendBox broadcaster={status?.twitch.broadcaster ?? null} replyTo={replyTo} clearReply={() => setReplyTo(null)} />
      ) : (
        <p class="muted small-text">Sending chat needs a bot or admin token.</p>
      )}
      <LiveRegion text={announcement} />
    </section>
  );
}
