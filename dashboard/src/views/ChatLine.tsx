// One line of the Chat view, rendered like Twitch chat: badges as small
// words, the name in the chatter's colour (made readable, see color.ts),
// emotes and cheermotes as named chips (the page's CSP allows no images
// from Twitch's CDN), mentions in bold. Untrusted text stays text nodes.
import type { ChatLine } from "../chatlog";
import { nameColors } from "../color";
import { chatSpecifics, noticeWords } from "../render";
import type { Json, Obj } from "../types";

const str = (v: Json | undefined): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");
const obj = (v: Json | undefined): Obj => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

const BADGE_WORDS: Record<string, string> = {
  broadcaster: "Broadcaster",
  moderator: "Mod",
  vip: "VIP",
  subscriber: "Sub",
  founder: "Founder",
  "sub-gifter": "Gifter",
  partner: "Verified",
  staff: "Staff",
  artist: "Artist",
  bits: "Bits",
  premium: "Prime",
  turbo: "Turbo",
};

function badgeWord(b: Obj): string {
  const set = str(b.set_id);
  const word = BADGE_WORDS[set] ?? set.replace(/[-_]/g, " ");
  // A subscriber's badge info is their months; a bits badge's id its tier.
  if (set === "subscriber" && str(b.info)) return `${word} ${str(b.info)} mo`;
  if (set === "bits" && str(b.id)) return `${word} ${str(b.id)}`;
  return word;
}

function Badges({ badges }: { badges: Json | undefined }) {
  const list = arr(badges).map(obj).filter((b) => str(b.set_id));
  if (!list.length) return null;
  return (
    <span class="chat-badges">
      {list.map((b, i) => (
        <span key={i} class="chat-badge">
          {badgeWord(b)}
        </span>
      ))}
    </span>
  );
}

/** The message's fragments (text, emote, cheermote, mention), else its text. */
function Fragments({ message }: { message: Json | undefined }) {
  const m = obj(message);
  const fragments = arr(m.fragments).map(obj);
  if (!fragments.length) return <>{str(m.text)}</>;
  return (
    <>
      {fragments.map((f, i) => {
        const text = str(f.text);
        switch (str(f.type)) {
          case "emote":
            return (
              <span key={i} class="emote" title={`Emote ${text}`}>
                {text}
              </span>
            );
          case "cheermote": {
            const c = obj(f.cheermote);
            return (
              <span key={i} class="emote cheermote" title={`Cheer: ${str(c.bits)} bits`}>
                {text}
              </span>
            );
          }
          case "mention":
            return (
              <b key={i} class="mention">
                {text}
              </b>
            );
          default:
            return <span key={i}>{text}</span>;
        }
      })}
    </>
  );
}

function Name({ d }: { d: Obj }) {
  const name = str(d.chatter_user_name) || str(d.chatter_user_login) || "someone";
  const c = nameColors(str(d.color), str(d.chatter_user_login) || name);
  return (
    <b class="chat-name" style={{ "--c-light": c.light, "--c-dark": c.dark }}>
      {name}
    </b>
  );
}

function clock(iso: string): string {
  const d = new Date(iso);
  return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function ChatLineView({ line, onReply }: { line: ChatLine; onReply?: (line: ChatLine) => void }) {
  const e = line.event;
  const d = obj(e.event_data);
  const time = (
    <time class="chat-time" dateTime={e.created} title={e.created}>
      {clock(e.created)}
    </time>
  );
  const test = e.origin === "test" ? <span class="chat-badge test">test</span> : null;
  const cls = ["chat-line", line.kind, line.cleared ? "cleared" : ""];

  if (line.kind === "system")
    return (
      <li class={cls.join(" ")}>
        {time} {test} <i>{line.text}</i>
      </li>
    );

  if (line.kind === "notice") {
    const via = str(d.source_broadcaster_user_name);
    return (
      <li class={cls.join(" ")} data-notice={str(d.notice_type)}>
        {time} {test}
        <span class="chat-badge notice">{noticeWords(str(d.notice_type))}</span>{" "}
        {via && <span class="chat-badge">via {via}</span>} <span class="system-text">{str(d.system_message)}</span>
        {str(obj(d.message).text) && (
          <div class="chat-body">
            <Name d={d} />
            <span aria-hidden="true">: </span>
            <Fragments message={d.message} />
          </div>
        )}
      </li>
    );
  }

  const x = chatSpecifics(d);
  if (x.bits) cls.push("cheer");
  if (x.points) cls.push("highlight");
  if (line.deleted) cls.push("deleted");
  const via = str(d.source_broadcaster_user_name);
  const text = <Fragments message={d.message} />;
  return (
    <li class={cls.join(" ")} data-message-id={str(d.message_id)}>
      {x.replyTo && (
        <div class="chat-reply">
          Replying to <b>@{x.replyTo}</b>: {x.replyText}
        </div>
      )}
      {time} {test}
      {via && <span class="chat-badge">via {via}</span>}
      <Badges badges={d.badges} /> <Name d={d} />
      <span aria-hidden="true">: </span>
      <span class="chat-text">{line.deleted ? <s>{text}</s> : text}</span>
      {x.bits > 0 && <span class="chat-tag">{x.bits.toLocaleString()} bits</span>}
      {x.points && <span class="chat-tag">{x.points}</span>}
      {line.deleted && <span class="chat-note"> (deleted by a moderator)</span>}
      {onReply && !line.deleted && !line.cleared && str(d.message_id) && (
        <button
          type="button"
          class="chat-reply-btn"
          aria-label={`Reply to ${str(d.chatter_user_name) || "this message"}`}
          onClick={() => onReply(line)}
        >
          Reply
        </button>
      )}
    </li>
  );
}
