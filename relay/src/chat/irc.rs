//! IRC lines the way the original TAU handed them to clients.
//!
//! The original read Twitch IRC and sent each line through its
//! `parse_message` (`tau/core/utils.py`); clients of `/ws/chat-bots/<bot>/`
//! received that function's result as `data`. [`parse_message`] is a port
//! of it, quirks included, so `data` is whatever the original would have
//! produced for the same line:
//!
//! - tag values stay IRC-escaped (`\s` for a space): it never unescaped;
//! - a tag is split at its first `=` and cut at the second (so a value that
//!   holds `=` is truncated), a tag without `=` is `true`;
//! - `prefix` keeps its leading `:`, `params` start with the command and
//!   the trailing parameter keeps its `:` (and the line's `\r\n`);
//! - `message-text` (PRIVMSG only) is the trailing parameter without its
//!   `:`, CR and LF removed;
//! - `emotes` becomes `[{"id", "positions": [[start, end], ...]}]`.
//!
//! [`Line`] builds the lines (tags escaped as Twitch escaped them).

use serde::{ser::SerializeMap, Serialize, Serializer};

/// One tag value as `parse_message` left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TagValue {
    /// `key=value` (still escaped).
    Text(String),
    /// `key` without `=`: Python's `True`.
    Flag(bool),
    /// The `emotes` tag, parsed.
    Emotes(Vec<Emote>),
}

/// One emote of the `emotes` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Emote {
    /// Twitch's emote id.
    pub id: String,
    /// `[start, end]` code-point positions in the message text, inclusive.
    pub positions: Vec<[i64; 2]>,
}

/// Tags in the line's order (Python dicts keep insertion order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(pub Vec<(String, TagValue)>);

impl Tags {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&TagValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` like a Python dict: a repeated key keeps its first place.
    fn insert(&mut self, key: &str, value: TagValue) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// `parse_message`'s result, fields in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IrcData {
    /// The line as received.
    pub raw: String,
    /// Its tags.
    pub tags: Tags,
    /// `:nick!user@host` or `:tmi.twitch.tv`, with the colon.
    pub prefix: Option<String>,
    /// `PRIVMSG`, `USERNOTICE`, ...
    pub command: Option<String>,
    /// The command, then its parameters (the trailing one with its `:`).
    pub params: Vec<String>,
    /// The chat text of a PRIVMSG.
    #[serde(rename = "message-text")]
    pub message_text: Option<String>,
}

/// Byte at `i`, or none past the end (where Python would raise).
fn at(data: &str, i: usize) -> Option<u8> {
    data.as_bytes().get(i).copied()
}

/// Skips spaces from `i`; `None` if the line ends in them (Python raised).
fn skip_spaces(data: &str, mut i: usize) -> Option<usize> {
    while at(data, i)? == b' ' {
        i += 1;
    }
    Some(i)
}

/// Position of the next space at or after `from`.
fn find_space(data: &str, from: usize) -> Option<usize> {
    data.get(from..)?.find(' ').map(|i| i + from)
}

/// The original's `parse_message`; `None` where it returned `None` (or
/// raised). Every delimiter is ASCII, so byte positions give the same
/// splits as Python's code-point positions.
pub fn parse_message(data: &str) -> Option<IrcData> {
    let mut message = IrcData {
        raw: data.to_string(),
        tags: Tags::default(),
        prefix: None,
        command: None,
        params: Vec::new(),
        message_text: None,
    };
    let mut position = 0;
    if at(data, 0)? == b'@' {
        let next = find_space(data, 0)?;
        for tag in data[1..next].split(';') {
            let mut pair = tag.split('=');
            let key = pair.next().unwrap_or_default();
            let value = match pair.next() {
                None => TagValue::Flag(true),
                Some(value) => TagValue::Text(value.to_string()),
            };
            message.tags.insert(key, value);
        }
        position = skip_spaces(data, next + 1)?;
    }
    if at(data, position)? == b':' {
        let next = find_space(data, position)?;
        message.prefix = Some(data[position..next].to_string());
        position = skip_spaces(data, next + 1)?;
    }
    let Some(next) = find_space(data, position) else {
        message.command = (data.len() > position).then(|| data[position..].to_string());
        return Some(message);
    };
    message.command = Some(data[position..next].to_string());
    // The original starts the parameters AT the command, so they hold it.
    while position < data.len() {
        if at(data, position)? == b':' {
            message.params.push(data[position..].to_string());
            break;
        }
        match find_space(data, position) {
            Some(next) => {
                message.params.push(data[position..next].to_string());
                position = skip_spaces(data, next + 1)?;
            }
            None => {
                message.params.push(data[position..].to_string());
                break;
            }
        }
    }
    if message.command.as_deref() == Some("PRIVMSG") {
        let text = message.params.get(2)?;
        message.message_text = Some(text.get(1..)?.replace(['\n', '\r'], ""));
    }
    if let Some(TagValue::Text(emotes)) = message.tags.get("emotes") {
        let parsed = parse_emotes(emotes)?;
        message.tags.insert("emotes", TagValue::Emotes(parsed));
    }
    Some(message)
}

/// `25:0-4,6-10/1902:12-16` → emotes; `None` where Python would raise.
fn parse_emotes(text: &str) -> Option<Vec<Emote>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split('/')
        .map(|emote| {
            let mut parts = emote.split(':');
            let id = parts.next()?.to_string();
            let positions = parts
                .next()?
                .split(',')
                .map(|range| {
                    let mut ends = range.split('-').map(|n| n.trim().parse::<i64>().ok());
                    Some([ends.next()??, ends.next()??])
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Emote { id, positions })
        })
        .collect()
}

/// Escapes a tag value as Twitch IRC did (`\s`, `\:`, `\\`, `\r`, `\n`).
pub fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ' ' => out.push_str("\\s"),
            ';' => out.push_str("\\:"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// An IRC line under construction: tags (sorted by name when written, as
/// Twitch sent them), prefix, command, middle parameters, trailing text.
#[derive(Debug, Default)]
pub struct Line {
    tags: Vec<(String, String)>,
    prefix: String,
    command: String,
    middle: Vec<String>,
    trailing: Option<String>,
}

impl Line {
    /// A line `:<prefix> <command> <middle...>`.
    pub fn new(prefix: &str, command: &str, middle: &[&str]) -> Line {
        Line {
            prefix: prefix.to_string(),
            command: command.to_string(),
            middle: middle.iter().map(|m| m.to_string()).collect(),
            ..Line::default()
        }
    }

    /// Adds tag `key` with `value` (escaped when written).
    pub fn tag(&mut self, key: &str, value: impl Into<String>) -> &mut Line {
        self.tags.push((key.to_string(), value.into()));
        self
    }

    /// Sets the trailing parameter (CR and LF, which IRC cannot carry, become spaces).
    pub fn trailing(&mut self, text: &str) -> &mut Line {
        self.trailing = Some(text.replace(['\r', '\n'], " "));
        self
    }

    /// The line, ending in `\r\n` as Twitch's IRC frames did.
    pub fn render(&self) -> String {
        let mut tags = self.tags.clone();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        let mut line = String::new();
        if !tags.is_empty() {
            line.push('@');
            let joined: Vec<String> = tags
                .iter()
                .map(|(k, v)| format!("{k}={}", escape_tag(v)))
                .collect();
            line.push_str(&joined.join(";"));
            line.push(' ');
        }
        line.push(':');
        line.push_str(&self.prefix);
        line.push(' ');
        line.push_str(&self.command);
        for param in &self.middle {
            line.push(' ');
            line.push_str(param);
        }
        if let Some(text) = &self.trailing {
            line.push_str(" :");
            line.push_str(text);
        }
        line.push_str("\r\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(line: &str) -> serde_json::Value {
        serde_json::to_value(parse_message(line).expect("parses")).unwrap()
    }

    /// Expected values were produced by running the original's
    /// `parse_message` (Python) on the same lines.
    #[test]
    fn a_privmsg_parses_as_the_original_did() {
        let line = "@badge-info=subscriber/16;badges=moderator/1,subscriber/12;color=#00FF7F;display-name=viewer32;emotes=25:0-4,12-16/1902:6-10;id=cc106a89;mod=1;room-id=1971641;subscriber=1;tmi-sent-ts=1700000000000;user-id=4145994;user-type=mod :viewer32!viewer32@viewer32.tmi.twitch.tv PRIVMSG #streamer :Kappa Keepo Kappa\r\n";
        assert_eq!(
            parsed(line),
            json!({
                "raw": line,
                "tags": {
                    "badge-info": "subscriber/16",
                    "badges": "moderator/1,subscriber/12",
                    "color": "#00FF7F",
                    "display-name": "viewer32",
                    "emotes": [
                        {"id": "25", "positions": [[0, 4], [12, 16]]},
                        {"id": "1902", "positions": [[6, 10]]}
                    ],
                    "id": "cc106a89",
                    "mod": "1",
                    "room-id": "1971641",
                    "subscriber": "1",
                    "tmi-sent-ts": "1700000000000",
                    "user-id": "4145994",
                    "user-type": "mod"
                },
                "prefix": ":viewer32!viewer32@viewer32.tmi.twitch.tv",
                "command": "PRIVMSG",
                "params": ["PRIVMSG", "#streamer", ":Kappa Keepo Kappa\r\n"],
                "message-text": "Kappa Keepo Kappa"
            })
        );
    }

    #[test]
    fn the_originals_quirks_are_kept() {
        // Escapes stay, `=` truncates, a bare tag is true, empty emotes is [].
        let line = "@a=x\\sy;b=1=2;flag;emotes= :tmi.twitch.tv CLEARCHAT #streamer\r\n";
        assert_eq!(
            parsed(line),
            json!({
                "raw": line,
                "tags": {"a": "x\\sy", "b": "1", "flag": true, "emotes": []},
                "prefix": ":tmi.twitch.tv",
                "command": "CLEARCHAT",
                "params": ["CLEARCHAT", "#streamer\r\n"],
                "message-text": null
            })
        );
        assert_eq!(
            parsed("PING :tmi.twitch.tv"),
            json!({"raw": "PING :tmi.twitch.tv", "tags": {}, "prefix": null,
                   "command": "PING", "params": ["PING", ":tmi.twitch.tv"], "message-text": null})
        );
        assert_eq!(parsed("PING")["command"], "PING");
        assert_eq!(parsed("PING")["params"], json!([]));
        assert!(parse_message("@only-tags").is_none());
        assert!(parse_message(":prefix-only").is_none());
        assert!(parse_message("").is_none());
        assert!(
            parse_message("@a=1 :p PRIVMSG #c").is_none(),
            "no text: raised"
        );
    }

    #[test]
    fn lines_render_with_sorted_escaped_tags() {
        let mut line = Line::new("tmi.twitch.tv", "USERNOTICE", &["#streamer"]);
        line.tag("system-msg", "a b;c\\").tag("id", "1");
        line.trailing("hi\nthere");
        assert_eq!(
            line.render(),
            "@id=1;system-msg=a\\sb\\:c\\\\ :tmi.twitch.tv USERNOTICE #streamer :hi there\r\n"
        );
        let bare = Line::new("tmi.twitch.tv", "CLEARCHAT", &["#streamer"]).render();
        assert_eq!(bare, ":tmi.twitch.tv CLEARCHAT #streamer\r\n");
    }
}
