// Human-readable rendering of events, per type family. Untrusted text is
// only ever rendered as text nodes (Preact escapes it).
import type { ComponentChildren } from "preact";
import type { Json, Obj, TauEvent } from "./types";

const str = (v: Json | undefined): string =>
  v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
const obj = (v: Json | undefined): Obj =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const num = (v: Json | undefined): string =>
  typeof v === "number" ? v.toLocaleString() : str(v);

/** The display name of `prefix`user_* in `d`, or `fallback`. */
export function who(d: Obj, prefix = "", fallback = "someone"): string {
  return str(d[prefix + "user_name"]) || str(d[prefix + "user_login"]) || fallback;
}

export function tier(t: Json | undefined): string {
  const s = str(t);
  if (s === "1000") return "Tier 1";
  if (s === "2000") return "Tier 2";
  if (s === "3000") return "Tier 3";
  if (s.toLowerCase() === "prime") return "Prime";
  return s ? `tier ${s}` : "an unknown tier";
}

function money(v: Json | undefined): string {
  const m = obj(v);
  if (typeof m.value !== "number") return "";
  const dp = typeof m.decimal_places === "number" ? m.decimal_places : 0;
  return `${(m.value / 10 ** dp).toFixed(dp)} ${str(m.currency)}`.trim();
}

function messageText(v: Json | undefined): string {
  return typeof v === "string" ? v : str(obj(v).text);
}

function Quote({ text }: { text: string }) {
  return text ? <blockquote class="quote">{text}</blockquote> : null;
}

function Facts({ items }: { items: [string, ComponentChildren][] }) {
  const shown = items.filter(([, v]) => v !== "" && v !== null && v !== undefined);
  if (!shown.length) return null;
  return (
    <dl class="facts">
      {shown.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function Progress({ value, max, label }: { value: number; max: number; label: string }) {
  if (!(max > 0)) return null;
  return (
    <div class="progress">
      <progress value={Math.min(value, max)} max={max} aria-label={label} />
      <span>
        {value.toLocaleString()} / {max.toLocaleString()}
      </span>
    </div>
  );
}

function contributionText(c: Obj): string {
  const kind = str(c.type);
  const total = typeof c.total === "number" ? c.total : 0;
  const what =
    kind === "bits" ? `${total.toLocaleString()} bits` : kind === "subscription" || kind === "subscriptions"
      ? `${total.toLocaleString()} sub points`
      : `${total.toLocaleString()} (${kind || "other"})`;
  return `${who(c)}: ${what}`;
}

export interface Summary {
  /** One line, plain text (also what screen readers hear). */
  title: string;
  body?: ComponentChildren;
}

export function summarize(e: TauEvent): Summary {
  const d = obj(e.event_data);
  const t = e.event_type;
  const parts = t.split("-");
  const last = parts[parts.length - 1];

  switch (t) {
    case "channel-follow":
      return { title: `${who(d)} followed` };
    case "channel-subscribe":
      return { title: `${who(d)} subscribed at ${tier(d.tier)}${d.is_gift === true ? " (gifted)" : ""}` };
    case "channel-subscription-message": {
      const months = d.cumulative_months;
      return {
        title: `${who(d)} resubscribed at ${tier(d.tier)}${typeof months === "number" ? ` for ${months} months` : ""}`,
        body: (
          <>
            <Quote text={messageText(d.message)} />
            <Facts items={[["Streak", num(d.streak_months)], ["Duration", num(d.duration_months)]]} />
          </>
        ),
      };
    }
    case "channel-subscription-gift": {
      const giver = d.is_anonymous === true ? "An anonymous gifter" : who(d);
      const n = typeof d.total === "number" ? d.total : 1;
      return {
        title: `${giver} gifted ${n} ${tier(d.tier)} sub${n === 1 ? "" : "s"}`,
        body: <Facts items={[["Gifted in total", num(d.cumulative_total)]]} />,
      };
    }
    case "channel-subscription-end":
      return { title: `${who(d)}'s ${tier(d.tier)} subscription ended` };
    case "channel-cheer": {
      const giver = d.is_anonymous === true ? "Anonymous" : who(d, "", "Anonymous");
      return {
        title: `${giver} cheered ${num(d.bits)} bits`,
        body: <Quote text={messageText(d.message)} />,
      };
    }
    case "channel-bits-use":
      return {
        title: `${who(d)} used ${num(d.bits)} bits${d.type ? ` (${str(d.type)})` : ""}`,
        body: <Quote text={messageText(d.message)} />,
      };
    case "channel-raid":
      return {
        title: `${who(d, "from_broadcaster_", "A channel")} raided with ${num(d.viewers)} viewers`,
        body: <Facts items={[["Raided channel", who(d, "to_broadcaster_", "")]]} />,
      };
    // Also other channels' (watched streamers): name the broadcaster.
    case "stream-online":
      return {
        title: `${who(d, "broadcaster_", "The stream")} went live${d.type && d.type !== "live" ? ` (${str(d.type)})` : ""}`,
        body: <Facts items={[["Started", when(str(d.started_at))]]} />,
      };
    case "stream-offline":
      return { title: `${who(d, "broadcaster_", "The stream")} went offline` };
    case "channel-shoutout-create":
      return {
        title: `Shoutout to ${who(d, "to_broadcaster_", "a channel")}`,
        body: <Facts items={[["By", who(d, "moderator_", "")], ["Viewers", num(d.viewer_count)]]} />,
      };
    case "channel-shoutout-receive":
      return {
        title: `${who(d, "from_broadcaster_", "A channel")} gave you a shoutout`,
        body: <Facts items={[["Viewers", num(d.viewer_count)]]} />,
      };
    case "channel-ad_break-begin":
      return {
        title: `Ad break: ${num(d.duration_seconds)} s`,
        body: (
          <Facts
            items={[
              ["Started", d.is_automatic === true ? "automatically" : who(d, "requester_", "")],
            ]}
          />
        ),
      };
    case "channel-ban": {
      const timeout = d.is_permanent === false;
      return {
        title: `${who(d, "moderator_", "A moderator")} ${timeout ? "timed out" : "banned"} ${who(d)}`,
        body: <Facts items={[["Reason", str(d.reason)], ["Until", timeout ? when(str(d.ends_at)) : ""]]} />,
      };
    }
    case "channel-unban":
      return { title: `${who(d, "moderator_", "A moderator")} unbanned ${who(d)}` };
    case "channel-chat-message":
      return chatMessage(d);
    case "channel-chat-notification":
      return {
        title: str(d.system_message) || `${who(d, "chatter_")}: ${noticeWords(str(d.notice_type))}`,
        body: <Quote text={messageText(d.message)} />,
      };
    case "channel-chat-message_delete":
      return { title: `A moderator deleted a chat message by ${who(d, "target_")}` };
    case "channel-chat-clear":
      return { title: "A moderator cleared the chat" };
    case "channel-chat-clear_user_messages":
      return { title: `${who(d, "target_")}'s chat messages were removed (timeout or ban)` };
    case "channel-update":
      return {
        title: `Channel updated: ${str(d.title)}`,
        body: <Facts items={[["Category", str(d.category_name)], ["Language", str(d.language)]]} />,
      };
    case "channel-moderator-add":
      return { title: `${who(d)} is now a moderator` };
    case "channel-moderator-remove":
      return { title: `${who(d)} is no longer a moderator` };
    case "channel-vip-add":
      return { title: `${who(d)} is now a VIP` };
    case "channel-vip-remove":
      return { title: `${who(d)} is no longer a VIP` };
  }

  if (t.startsWith("channel-channel_points_custom_reward_redemption")) {
    const reward = obj(d.reward);
    return {
      title: `${who(d)} redeemed “${str(reward.title)}”${typeof reward.cost === "number" ? ` (${reward.cost.toLocaleString()} points)` : ""}`,
      body: (
        <>
          <Quote text={str(d.user_input)} />
          <Facts items={[["Status", str(d.status)]]} />
        </>
      ),
    };
  }
  if (t.startsWith("channel-channel_points_automatic_reward_redemption")) {
    const reward = obj(d.reward);
    return {
      title: `${who(d)} redeemed ${str(reward.type).replace(/_/g, " ") || "an automatic reward"}`,
      body: <Quote text={messageText(d.message) || str(d.user_input)} />,
    };
  }
  if (t.startsWith("channel-hype_train-")) {
    const golden = d.type === "golden_kappa" ? "Golden Kappa train" : d.type === "treasure" ? "Treasure train" : "Hype train";
    const verb = last === "begin" ? "started" : last === "end" ? "ended" : "in progress";
    const level = typeof d.level === "number" ? ` at level ${d.level}` : "";
    const top = arr(d.top_contributions).map(obj);
    const goal = typeof d.goal === "number" ? d.goal : 0;
    const progress = typeof d.progress === "number" ? d.progress : 0;
    return {
      title: `${golden} ${verb}${level}`,
      body: (
        <>
          {last !== "end" && <Progress value={progress} max={goal} label={`Level ${str(d.level)} progress`} />}
          <Facts items={[["Total", num(d.total)], ["All-time high", d.all_time_high_level ? `level ${str(d.all_time_high_level)}` : ""]]} />
          {top.length > 0 && (
            <div class="sub">
              <span class="muted">Top contributors</span>
              <ul class="plain">
                {top.map((c, i) => (
                  <li key={i}>{contributionText(c)}</li>
                ))}
              </ul>
            </div>
          )}
        </>
      ),
    };
  }
  if (t.startsWith("channel-poll-")) {
    const choices = arr(d.choices).map(obj);
    const verb = last === "begin" ? "started" : last === "end" ? `ended (${str(d.status) || "done"})` : "update";
    const max = Math.max(0, ...choices.map((c) => (typeof c.votes === "number" ? c.votes : 0)));
    return {
      title: `Poll ${verb}: ${str(d.title)}`,
      body: (
        <ul class="plain outcomes">
          {choices.map((c, i) => (
            <li key={i} class={last === "end" && max > 0 && c.votes === max ? "winner" : ""}>
              {str(c.title)}
              {typeof c.votes === "number" ? ` — ${c.votes.toLocaleString()} votes` : ""}
              {last === "end" && max > 0 && c.votes === max ? " (winner)" : ""}
            </li>
          ))}
        </ul>
      ),
    };
  }
  if (t.startsWith("channel-prediction-")) {
    const outcomes = arr(d.outcomes).map(obj);
    const verb = last === "begin" ? "started" : last === "lock" ? "locked" : last === "end" ? `ended (${str(d.status) || "done"})` : "update";
    return {
      title: `Prediction ${verb}: ${str(d.title)}`,
      body: (
        <ul class="plain outcomes">
          {outcomes.map((o, i) => {
            const won = d.winning_outcome_id !== undefined && d.winning_outcome_id !== null && o.id === d.winning_outcome_id;
            return (
              <li key={i} class={won ? "winner" : ""}>
                {str(o.title)}
                {typeof o.users === "number" ? ` — ${o.users.toLocaleString()} users` : ""}
                {typeof o.channel_points === "number" ? `, ${o.channel_points.toLocaleString()} points` : ""}
                {won ? " (winner)" : ""}
              </li>
            );
          })}
        </ul>
      ),
    };
  }
  if (t.startsWith("channel-charity_campaign-")) {
    const charity = str(d.charity_name) || "charity";
    if (last === "donate") return { title: `${who(d)} donated ${money(d.amount)} to ${charity}` };
    return {
      title: `Charity campaign ${last === "start" ? "started" : last === "stop" ? "stopped" : "progress"}: ${charity}`,
      body: <Facts items={[["Raised", money(d.current_amount)], ["Target", money(d.target_amount)]]} />,
    };
  }
  if (t.startsWith("channel-goal-")) {
    const cur = typeof d.current_amount === "number" ? d.current_amount : 0;
    const target = typeof d.target_amount === "number" ? d.target_amount : 0;
    return {
      title: `${str(d.type) || "Creator"} goal ${last === "begin" ? "started" : last === "end" ? "ended" : "progress"}: ${str(d.description)}`,
      body: <Progress value={cur} max={target} label="Goal progress" />,
    };
  }
  return { title: t.replace(/-/g, " ").replace(/_/g, " "), body: <Generic d={d} /> };
}

/** Twitch's `notice_type` in words ("sub_gift" → "sub gift"; shared chat's prefix dropped). */
export function noticeWords(t: string): string {
  return t.replace(/^shared_chat_/, "").replace(/_/g, " ") || "notification";
}

/** How a chat message was special: its cheer, reply, channel points; empty for a plain one. */
export function chatSpecifics(d: Obj): { bits: number; replyTo: string; replyText: string; points: string } {
  const cheer = obj(d.cheer);
  const reply = obj(d.reply);
  const reward = str(d.channel_points_custom_reward_id);
  const type = str(d.message_type);
  return {
    bits: typeof cheer.bits === "number" ? cheer.bits : 0,
    replyTo: str(reply.parent_user_name) || str(reply.parent_user_login),
    replyText: str(reply.parent_message_body),
    points:
      type === "channel_points_highlighted"
        ? "highlighted with channel points"
        : reward
          ? "sent with a channel points reward"
          : type.startsWith("power_ups")
            ? "with a power-up"
            : "",
  };
}

function chatMessage(d: Obj): Summary {
  const x = chatSpecifics(d);
  return {
    title: `${who(d, "chatter_")}${x.bits ? ` cheered ${x.bits.toLocaleString()} bits` : ""}: ${messageText(d.message)}`,
    body: (
      <Facts
        items={[
          ["Replying to", x.replyTo ? `${x.replyTo}: ${x.replyText}` : ""],
          ["Channel points", x.points],
        ]}
      />
    ),
  };
}

/** The key fields of any other type: its top-level plain values. */
function Generic({ d }: { d: Obj }) {
  const items: [string, string][] = [];
  for (const [k, v] of Object.entries(d)) {
    if (k.startsWith("broadcaster_") || v === null || typeof v === "object") continue;
    if (k.endsWith("_id") || k === "id") continue;
    items.push([k.replace(/_/g, " "), str(v)]);
    if (items.length >= 8) break;
  }
  return <Facts items={items} />;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (isNaN(t)) return iso;
  return relative(t);
}

export function relative(t: number): string {
  const s = Math.round((Date.now() - t) / 1000);
  const future = s < 0;
  const a = Math.abs(s);
  const txt =
    a < 45 ? `${a} s` : a < 5400 ? `${Math.round(a / 60)} min` : a < 129600 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} days`;
  return future ? `in ${txt}` : `${txt} ago`;
}

/** The users an event is about (for the feed's user filter). */
export function usersOf(e: TauEvent): string {
  const d = obj(e.event_data);
  return ["user_", "from_broadcaster_user_", "to_broadcaster_user_", "chatter_user_", "moderator_user_", "target_user_"]
    .flatMap((p) => [str(d[p + "login"]), str(d[p + "name"])])
    .join(" ")
    .toLowerCase();
}
