// The Chat view's log, kept by the app while other views are open: chat
// lines from the live socket's `channel-chat-*` events, the newest 500,
// with Twitch's moderation applied to lines already shown (a deleted
// message is struck through, a clear greys the log) rather than hidden,
// so a moderator sees what happened.
import type { Obj, TauEvent } from "./types";

export const CHAT_LIMIT = 500;

export const CHAT_TYPES = [
  "channel-chat-message",
  "channel-chat-notification",
  "channel-chat-message_delete",
  "channel-chat-clear",
  "channel-chat-clear_user_messages",
];

export interface ChatLine {
  key: number;
  /** message: a chatter's line; notice: Twitch's sub/raid/announcement line; system: a moderation note. */
  kind: "message" | "notice" | "system";
  event: TauEvent;
  /** For system lines: what happened, in words. */
  text?: string;
  deleted: boolean;
  cleared: boolean;
}

const data = (e: TauEvent): Obj => (e.event_data && typeof e.event_data === "object" ? e.event_data : {});
const s = (v: unknown): string => (typeof v === "string" ? v : "");

export class ChatLog {
  lines: ChatLine[] = [];
  /** Lines that arrived while paused, shown on resume. */
  waiting: ChatLine[] = [];
  paused = false;
  private nextKey = 0;

  /**
   * Takes one live event; returns the line it added (null when it only
   * changed lines already there, or is not a chat event).
   */
  add(e: TauEvent): ChatLine | null {
    const d = data(e);
    switch (e.event_type) {
      case "channel-chat-message":
        return this.push({ kind: "message", event: e });
      case "channel-chat-notification":
        return this.push({ kind: "notice", event: e });
      case "channel-chat-message_delete": {
        const id = s(d.message_id);
        for (const line of this.all()) if (line.kind === "message" && s(data(line.event).message_id) === id) line.deleted = true;
        return null;
      }
      case "channel-chat-clear":
        for (const line of this.all()) line.cleared = true;
        return this.push({ kind: "system", event: e, text: "Chat was cleared by a moderator" });
      case "channel-chat-clear_user_messages": {
        const id = s(d.target_user_id);
        for (const line of this.all()) if (line.kind !== "system" && s(data(line.event).chatter_user_id) === id) line.cleared = true;
        const name = s(d.target_user_name) || s(d.target_user_login) || "a chatter";
        return this.push({ kind: "system", event: e, text: `${name}'s messages were removed (timeout or ban)` });
      }
      default:
        return null;
    }
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    if (!paused && this.waiting.length) {
      this.lines = [...this.lines, ...this.waiting].slice(-CHAT_LIMIT);
      this.waiting = [];
    }
  }

  clear(): void {
    this.lines = [];
    this.waiting = [];
  }

  private all(): ChatLine[] {
    return [...this.lines, ...this.waiting];
  }

  private push(partial: Omit<ChatLine, "key" | "deleted" | "cleared">): ChatLine {
    const line: ChatLine = { ...partial, key: this.nextKey++, deleted: false, cleared: false };
    if (this.paused) this.waiting = [...this.waiting, line].slice(-CHAT_LIMIT);
    else this.lines = [...this.lines, line].slice(-CHAT_LIMIT);
    return line;
  }
}
