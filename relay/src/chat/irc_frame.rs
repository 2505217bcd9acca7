//! EventSub chat events as the original TAU's chat frames.
//!
//! The original's chat sockets carried Twitch IRC lines; Twitch's supported
//! way to read chat today is EventSub. Each chat event becomes the IRC line
//! Twitch's IRC sent for the same thing ([`Line`]), and `data` is what the
//! original's `parse_message` made of that line ([`parse_message`]), so a
//! client reading `data["tags"]["display-name"]` or `data["message-text"]`
//! works unchanged; the EventSub event rides along verbatim as `event_data`.
//!
//! | EventSub type                      | IRC command                     |
//! |------------------------------------|---------------------------------|
//! | `channel.chat.message`             | `PRIVMSG`                       |
//! | `channel.chat.notification`        | `USERNOTICE` (`msg-id` from `notice_type`) |
//! | `channel.chat.message_delete`      | `CLEARMSG` (`login`, `target-msg-id`) |
//! | `channel.chat.clear`               | `CLEARCHAT`                     |
//! | `channel.chat.clear_user_messages` | `CLEARCHAT :<login>` (`target-user-id`) |
//!
//! What cannot be reproduced: `tmi-sent-ts` is when TAU received the event
//! (EventSub carries no send time in the event); `flags`, `client-nonce`,
//! `returning-chatter`, `emote-only` and `ban-duration` have no EventSub
//! source and are left out; `CLEARMSG` has no trailing message text
//! (EventSub does not repeat it); `msg-param-*` tags are filled for the
//! common notices (subs, gifts, raids, announcements, bits badges, charity),
//! others carry only `msg-id` and `system-msg`. Cheermotes are not emotes,
//! as on IRC; emote positions count code points, as IRC did.

use serde_json::Value;

use super::irc::{parse_message, IrcData, Line};

/// The TAU event types with an IRC form, and their EventSub names.
pub const CHAT_TYPES: [(&str, &str); 5] = [
    ("channel-chat-message", "channel.chat.message"),
    ("channel-chat-notification", "channel.chat.notification"),
    ("channel-chat-message_delete", "channel.chat.message_delete"),
    ("channel-chat-clear", "channel.chat.clear"),
    (
        "channel-chat-clear_user_messages",
        "channel.chat.clear_user_messages",
    ),
];

/// Whether `tau_type` has an IRC form.
pub fn is_chat_type(tau_type: &str) -> bool {
    CHAT_TYPES.iter().any(|(t, _)| *t == tau_type)
}

/// The server prefix of Twitch's own messages.
const TMI: &str = "tmi.twitch.tv";

/// A string field of `v`, or "" (missing, null, or not a string).
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// A scalar field of `v` as IRC text (numbers and booleans spelled out).
fn text(v: &Value, key: &str) -> Option<String> {
    match &v[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The IRC line for one chat event of `tau_type`, `None` for other types.
/// `sent_ms` becomes `tmi-sent-ts`.
pub fn irc_line(tau_type: &str, event: &Value, sent_ms: i64) -> Option<String> {
    let channel = format!("#{}", s(event, "broadcaster_user_login"));
    let room = s(event, "broadcaster_user_id");
    let ts = sent_ms.to_string();
    let line = match tau_type {
        "channel-chat-message" => privmsg(event, &channel, room, &ts),
        "channel-chat-notification" => usernotice(event, &channel, room, &ts),
        "channel-chat-message_delete" => {
            let mut line = Line::new(TMI, "CLEARMSG", &[&channel]);
            line.tag("login", s(event, "target_user_login"))
                .tag("room-id", room)
                .tag("target-msg-id", s(event, "message_id"))
                .tag("tmi-sent-ts", ts);
            line
        }
        "channel-chat-clear" => {
            let mut line = Line::new(TMI, "CLEARCHAT", &[&channel]);
            line.tag("room-id", room).tag("tmi-sent-ts", ts);
            line
        }
        "channel-chat-clear_user_messages" => {
            let mut line = Line::new(TMI, "CLEARCHAT", &[&channel]);
            line.tag("room-id", room)
                .tag("target-user-id", s(event, "target_user_id"))
                .tag("tmi-sent-ts", ts)
                .trailing(s(event, "target_user_login"));
            line
        }
        _ => return None,
    };
    Some(line.render())
}

/// `data` of the original's frame for one chat event.
pub fn irc_data(tau_type: &str, event: &Value, sent_ms: i64) -> Option<IrcData> {
    parse_message(&irc_line(tau_type, event, sent_ms)?)
}

fn privmsg(event: &Value, channel: &str, room: &str, ts: &str) -> Line {
    let login = s(event, "chatter_user_login");
    let prefix = format!("{login}!{login}@{login}.tmi.twitch.tv");
    let mut line = Line::new(&prefix, "PRIVMSG", &[channel]);
    user_tags(&mut line, event);
    line.tag("first-msg", flag(s(event, "message_type") == "user_intro"))
        .tag("id", s(event, "message_id"))
        .tag("room-id", room)
        .tag("tmi-sent-ts", ts)
        .tag("user-id", s(event, "chatter_user_id"));
    if let Some(bits) = text(&event["cheer"], "bits") {
        line.tag("bits", bits);
    }
    if let Some(reward) = event["channel_points_custom_reward_id"].as_str() {
        line.tag("custom-reward-id", reward);
    }
    let msg_id = match s(event, "message_type") {
        "channel_points_highlighted" => Some("highlighted-message"),
        "channel_points_sub_only" => Some("skip-subs-mode-message"),
        "user_intro" => Some("user-intro"),
        "power_ups_gigantified_emote" => Some("gigantified-emote-message"),
        "power_ups_message_effect" => Some("animated-message"),
        _ => None,
    };
    if let Some(msg_id) = msg_id {
        line.tag("msg-id", msg_id);
    }
    let reply = &event["reply"];
    if reply.is_object() {
        for (tag, field) in [
            ("reply-parent-display-name", "parent_user_name"),
            ("reply-parent-msg-body", "parent_message_body"),
            ("reply-parent-msg-id", "parent_message_id"),
            ("reply-parent-user-id", "parent_user_id"),
            ("reply-parent-user-login", "parent_user_login"),
            ("reply-thread-parent-display-name", "thread_user_name"),
            ("reply-thread-parent-msg-id", "thread_message_id"),
            ("reply-thread-parent-user-id", "thread_user_id"),
            ("reply-thread-parent-user-login", "thread_user_login"),
        ] {
            line.tag(tag, s(reply, field));
        }
    }
    line.trailing(s(&event["message"], "text"));
    line
}

fn usernotice(event: &Value, channel: &str, room: &str, ts: &str) -> Line {
    let mut line = Line::new(TMI, "USERNOTICE", &[channel]);
    user_tags(&mut line, event);
    let anonymous = event["chatter_is_anonymous"].as_bool() == Some(true);
    let (login, user_id) = if anonymous {
        ("ananonymousgifter", "274598607")
    } else {
        (s(event, "chatter_user_login"), s(event, "chatter_user_id"))
    };
    line.tag("id", s(event, "message_id"))
        .tag("login", login)
        .tag("room-id", room)
        .tag("system-msg", s(event, "system_message"))
        .tag("tmi-sent-ts", ts)
        .tag("user-id", user_id);
    let notice = s(event, "notice_type");
    let details = &event[notice];
    let (inner, shared) = match notice.strip_prefix("shared_chat_") {
        Some(inner) => (inner, true),
        None => (notice, false),
    };
    let (msg_id, params) = notice_tags(inner, details);
    if shared {
        line.tag("msg-id", "sharedchatnotice")
            .tag("source-msg-id", msg_id)
            .tag("source-room-id", s(event, "source_broadcaster_user_id"))
            .tag("source-id", s(event, "source_message_id"));
    } else {
        line.tag("msg-id", msg_id);
    }
    for (key, value) in params {
        line.tag(&format!("msg-param-{key}"), value);
    }
    let message = s(&event["message"], "text");
    if !message.is_empty() {
        line.trailing(message);
    }
    line
}

/// IRC's `msg-id` for a notice type, and its `msg-param-*` tags.
fn notice_tags(notice: &str, d: &Value) -> (String, Vec<(&'static str, String)>) {
    let mut params = Vec::new();
    let mut put = |key: &'static str, value: Option<String>| {
        if let Some(value) = value {
            params.push((key, value));
        }
    };
    let plan = |d: &Value| {
        if d["is_prime"].as_bool() == Some(true) {
            Some("Prime".to_string())
        } else {
            text(d, "sub_tier").or_else(|| text(d, "sub_plan"))
        }
    };
    let msg_id = match notice {
        "sub" => {
            put("sub-plan", plan(d));
            put("multimonth-duration", text(d, "duration_months"));
            "sub"
        }
        "resub" => {
            put("cumulative-months", text(d, "cumulative_months"));
            put("multimonth-duration", text(d, "duration_months"));
            put("streak-months", text(d, "streak_months"));
            put(
                "should-share-streak",
                Some(flag(d["streak_months"].is_number())),
            );
            put("sub-plan", plan(d));
            put("was-gifted", text(d, "is_gift"));
            "resub"
        }
        "sub_gift" => {
            put("gift-months", text(d, "duration_months"));
            put("recipient-display-name", text(d, "recipient_user_name"));
            put("recipient-id", text(d, "recipient_user_id"));
            put("recipient-user-name", text(d, "recipient_user_login"));
            put("sender-count", text(d, "cumulative_total"));
            put("sub-plan", plan(d));
            put("community-gift-id", text(d, "community_gift_id"));
            "subgift"
        }
        "community_sub_gift" => {
            put("mass-gift-count", text(d, "total"));
            put("sender-count", text(d, "cumulative_total"));
            put("sub-plan", plan(d));
            put("community-gift-id", text(d, "id"));
            "submysterygift"
        }
        "gift_paid_upgrade" => {
            put("sender-login", text(d, "gifter_user_login"));
            put("sender-name", text(d, "gifter_user_name"));
            if d["gifter_is_anonymous"].as_bool() == Some(true) {
                "anongiftpaidupgrade"
            } else {
                "giftpaidupgrade"
            }
        }
        "prime_paid_upgrade" => {
            put("sub-plan", plan(d));
            "primepaidupgrade"
        }
        "raid" => {
            put("displayName", text(d, "user_name"));
            put("login", text(d, "user_login"));
            put("viewerCount", text(d, "viewer_count"));
            put("profileImageURL", text(d, "profile_image_url"));
            "raid"
        }
        "unraid" => "unraid",
        "pay_it_forward" => {
            put("prior-gifter-anonymous", text(d, "gifter_is_anonymous"));
            put("prior-gifter-display-name", text(d, "gifter_user_name"));
            put("prior-gifter-id", text(d, "gifter_user_id"));
            put("prior-gifter-user-name", text(d, "gifter_user_login"));
            "communitypayforward"
        }
        "announcement" => {
            put("color", text(d, "color"));
            "announcement"
        }
        "bits_badge_tier" => {
            put("threshold", text(d, "tier"));
            "bitsbadgetier"
        }
        "charity_donation" => {
            put("charity-name", text(d, "charity_name"));
            let amount = &d["amount"];
            put("donation-amount", text(amount, "value"));
            put("donation-currency", text(amount, "currency"));
            put("exponent", text(amount, "decimal_places"));
            "charitydonation"
        }
        other => return (other.to_string(), params),
    };
    (msg_id.to_string(), params)
}

/// `1` or `0`, as IRC spelled booleans.
fn flag(yes: bool) -> String {
    if yes { "1" } else { "0" }.to_string()
}

/// Tags every user message carries: badges, color, name, emotes, roles.
fn user_tags(line: &mut Line, event: &Value) {
    let badges = event["badges"].as_array().cloned().unwrap_or_default();
    let has = |set: &str| badges.iter().any(|b| s(b, "set_id") == set);
    let list = |with_info: bool| {
        badges
            .iter()
            .filter(|b| !with_info || !s(b, "info").is_empty())
            .map(|b| {
                let value = if with_info { s(b, "info") } else { s(b, "id") };
                format!("{}/{value}", s(b, "set_id"))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let user_type = ["staff", "admin", "global_mod", "moderator"]
        .into_iter()
        .find(|t| has(t))
        .map_or("", |t| if t == "moderator" { "mod" } else { t });
    line.tag("badge-info", list(true))
        .tag("badges", list(false))
        .tag("color", s(event, "color"))
        .tag("display-name", s(event, "chatter_user_name"))
        .tag("emotes", emotes(&event["message"]["fragments"]))
        .tag("mod", flag(has("moderator")))
        .tag("subscriber", flag(has("subscriber") || has("founder")))
        .tag("turbo", flag(has("turbo")))
        .tag("user-type", user_type);
    if has("vip") {
        line.tag("vip", "1");
    }
}

/// The `emotes` tag: `id:start-end,start-end/id:...`, emotes in order of
/// first use, positions in code points over the fragments' text.
fn emotes(fragments: &Value) -> String {
    let mut order: Vec<(String, Vec<String>)> = Vec::new();
    let mut position = 0usize;
    for fragment in fragments.as_array().into_iter().flatten() {
        let len = s(fragment, "text").chars().count();
        if s(fragment, "type") == "emote" && len > 0 {
            let id = s(&fragment["emote"], "id").to_string();
            let range = format!("{}-{}", position, position + len - 1);
            match order.iter_mut().find(|(known, _)| *known == id) {
                Some((_, ranges)) => ranges.push(range),
                None => order.push((id, vec![range])),
            }
        }
        position += len;
    }
    order
        .into_iter()
        .map(|(id, ranges)| format!("{id}:{}", ranges.join(",")))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Twitch's example payload for `event` of `key` (`channel.chat.message@1`).
    fn example(key: &str, index: usize) -> Value {
        let all: Value =
            serde_json::from_str(include_str!("../../../eventsub/src/data/examples.json")).unwrap();
        all[key][index]["event"].clone()
    }

    fn data(tau_type: &str, event: &Value) -> Value {
        serde_json::to_value(irc_data(tau_type, event, 1_700_000_000_000).unwrap()).unwrap()
    }

    #[test]
    fn twitchs_chat_message_example_is_a_privmsg() {
        let event = example("channel.chat.message@1", 0);
        let raw = "@badge-info=subscriber/16;badges=moderator/1,subscriber/12,sub-gifter/1;color=#00FF7F;display-name=viewer32;emotes=;first-msg=0;id=cc106a89-1814-919d-454c-f4f2f970aae7;mod=1;room-id=1971641;subscriber=1;tmi-sent-ts=1700000000000;turbo=0;user-id=4145994;user-type=mod :viewer32!viewer32@viewer32.tmi.twitch.tv PRIVMSG #streamer :Hi chat\r\n";
        assert_eq!(
            data("channel-chat-message", &event),
            json!({
                "raw": raw,
                "tags": {
                    "badge-info": "subscriber/16",
                    "badges": "moderator/1,subscriber/12,sub-gifter/1",
                    "color": "#00FF7F",
                    "display-name": "viewer32",
                    "emotes": [],
                    "first-msg": "0",
                    "id": "cc106a89-1814-919d-454c-f4f2f970aae7",
                    "mod": "1",
                    "room-id": "1971641",
                    "subscriber": "1",
                    "tmi-sent-ts": "1700000000000",
                    "turbo": "0",
                    "user-id": "4145994",
                    "user-type": "mod"
                },
                "prefix": ":viewer32!viewer32@viewer32.tmi.twitch.tv",
                "command": "PRIVMSG",
                "params": ["PRIVMSG", "#streamer", ":Hi chat\r\n"],
                "message-text": "Hi chat"
            })
        );
    }

    #[test]
    fn emotes_replies_cheers_and_rewards_become_tags() {
        let event = json!({
            "broadcaster_user_id": "1337", "broadcaster_user_login": "cooler_user",
            "chatter_user_id": "7", "chatter_user_login": "viewer", "chatter_user_name": "Viewer",
            "message_id": "m-1", "message_type": "channel_points_highlighted", "color": "",
            "badges": [{"set_id": "vip", "id": "1", "info": ""},
                       {"set_id": "founder", "id": "0", "info": "3"}],
            "message": {"text": "é Kappa hi Kappa LUL", "fragments": [
                {"type": "text", "text": "é "},
                {"type": "emote", "text": "Kappa", "emote": {"id": "25"}},
                {"type": "text", "text": " hi "},
                {"type": "emote", "text": "Kappa", "emote": {"id": "25"}},
                {"type": "text", "text": " "},
                {"type": "emote", "text": "LUL", "emote": {"id": "425618"}}]},
            "cheer": {"bits": 100},
            "channel_points_custom_reward_id": "reward-1",
            "reply": {"parent_message_id": "p-1", "parent_message_body": "hello there; you",
                      "parent_user_id": "8", "parent_user_login": "other", "parent_user_name": "Other",
                      "thread_message_id": "t-1", "thread_user_id": "9",
                      "thread_user_login": "first", "thread_user_name": "First"}
        });
        let data = data("channel-chat-message", &event);
        let tags = &data["tags"];
        assert_eq!(
            tags["emotes"],
            json!([{"id": "25", "positions": [[2, 6], [11, 15]]},
                   {"id": "425618", "positions": [[17, 19]]}])
        );
        // Code points: `é` is one position (two UTF-8 bytes).
        let text = data["message-text"].as_str().unwrap();
        let chars: Vec<char> = text.chars().collect();
        let at = |a: usize, b: usize| chars[a..=b].iter().collect::<String>();
        assert_eq!(
            (at(2, 6), at(11, 15), at(17, 19)),
            ("Kappa".into(), "Kappa".into(), "LUL".into())
        );
        assert_eq!(tags["bits"], "100");
        assert_eq!(tags["custom-reward-id"], "reward-1");
        assert_eq!(tags["msg-id"], "highlighted-message");
        assert_eq!(tags["vip"], "1");
        assert_eq!(tags["subscriber"], "1", "founders are subscribers");
        assert_eq!(tags["badge-info"], "founder/3");
        assert_eq!(tags["mod"], "0");
        assert_eq!(tags["reply-parent-msg-id"], "p-1");
        assert_eq!(tags["reply-parent-msg-body"], "hello\\sthere\\:\\syou");
        assert_eq!(tags["reply-thread-parent-user-login"], "first");
        assert_eq!(data["params"][1], "#cooler_user");
    }

    #[test]
    fn twitchs_resub_example_is_a_usernotice() {
        let event = example("channel.chat.notification@1", 0);
        let data = data("channel-chat-notification", &event);
        assert_eq!(data["command"], "USERNOTICE");
        assert_eq!(data["prefix"], ":tmi.twitch.tv");
        assert_eq!(data["params"], json!(["USERNOTICE", "#streamer\r\n"]));
        assert_eq!(data["message-text"], Value::Null);
        let tags = &data["tags"];
        assert_eq!(tags["msg-id"], "resub");
        assert_eq!(tags["msg-param-cumulative-months"], "10");
        assert_eq!(tags["msg-param-sub-plan"], "1000");
        assert_eq!(tags["msg-param-should-share-streak"], "0");
        assert_eq!(tags["login"], "viewer23");
        assert_eq!(
            tags["system-msg"],
            "viewer23\\ssubscribed\\sat\\sTier\\s1.\\sThey've\\ssubscribed\\sfor\\s10\\smonths!"
        );
        let shared = data_of_shared();
        assert_eq!(shared["tags"]["msg-id"], "sharedchatnotice");
        assert_eq!(shared["tags"]["source-msg-id"], "resub");
        assert_eq!(shared["tags"]["source-room-id"], "112233");
    }

    fn data_of_shared() -> Value {
        data(
            "channel-chat-notification",
            &example("channel.chat.notification@1", 1),
        )
    }

    #[test]
    fn deletes_and_clears_are_clearmsg_and_clearchat() {
        let delete = data(
            "channel-chat-message_delete",
            &example("channel.chat.message_delete@1", 0),
        );
        assert_eq!(
            delete["raw"],
            "@login=uncool_viewer;room-id=1337;target-msg-id=ab24e0b0-2260-4bac-94e4-05eedd4ecd0e;tmi-sent-ts=1700000000000 :tmi.twitch.tv CLEARMSG #cool_user\r\n"
        );
        let clear = data("channel-chat-clear", &example("channel.chat.clear@1", 0));
        assert_eq!(
            clear["raw"],
            "@room-id=1337;tmi-sent-ts=1700000000000 :tmi.twitch.tv CLEARCHAT #cool_user\r\n"
        );
        let user = data(
            "channel-chat-clear_user_messages",
            &example("channel.chat.clear_user_messages@1", 0),
        );
        assert_eq!(
            user["params"],
            json!(["CLEARCHAT", "#cool_user", ":uncool_viewer\r\n"])
        );
        assert_eq!(user["tags"]["target-user-id"], "7734");
        assert!(irc_line("channel-follow", &json!({}), 0).is_none());
    }
}
