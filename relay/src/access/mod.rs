//! Least privilege: what each API token may do.
//!
//! Every token has a [`Role`], chosen when it is created. The roles are
//! nested (an admin may do everything a bot may, a bot everything an
//! overlay may), so a route needs only its *lowest* role:
//!
//! - `overlay`: read-only: the event socket and history, optionally only
//!   some event types. Safe to embed in a browser source.
//! - `bot`: also replay, test events, status, and user-token Helix calls on
//!   a short allow-list ([`helix`]).
//! - `admin`: also tokens, deleting history, connecting Twitch, any Helix
//!   path, and the app token on the app allow-list.
//!
//! Why here and not in each handler: the route table ([`routes`]) is the
//! one place that registers a route *and* states what it needs, and one
//! guard ([`guard`]) enforces it, so a route cannot be added without a
//! rule, and a test can walk every rule with every role.
//!
//! - [`routes`]: the table that builds the router and records each rule.
//! - [`guard`]: the middleware that authenticates and checks the role.
//! - [`helix`]: which Helix calls a role may make, and with which token.
//! - [`watch`]: each replica's live view of tokens, so sockets of a revoked
//!   or demoted token close within a second.

pub mod guard;
pub mod helix;
pub mod routes;
pub mod watch;

use serde::{Deserialize, Serialize};

use crate::{catalog::Catalog, event::tau_event_type};

/// What a token may do; ordered from least to most powerful.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: the event socket and history.
    Overlay,
    /// Also replay, test events, status and allow-listed Helix calls.
    Bot,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Overlay, Role::Bot, Role::Admin];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Overlay => "overlay",
            Role::Bot => "bot",
            Role::Admin => "admin",
        }
    }

    /// Parses a name as stored or typed (`admin`, `bot`, `overlay`).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name.trim())
    }

    /// True if this role may do what `need` may.
    pub fn covers(self, need: Role) -> bool {
        self >= need
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's powers: its role and, for overlays, the event types it may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// TAU event types (`channel-follow`) this token may receive; `None`: all.
    pub event_types: Option<Vec<String>>,
}

impl Grant {
    /// An unrestricted grant of `role`.
    pub fn role(role: Role) -> Grant {
        Grant {
            role,
            event_types: None,
        }
    }

    /// Builds a grant from what a person asked for (REST body or CLI
    /// flags): a role name and, for overlays only, event type names in
    /// either spelling (`channel.follow`, `channel-follow`), checked against
    /// the catalog. `Err` says what is wrong, in words.
    pub fn requested(
        role: Option<&str>,
        event_types: Option<Vec<String>>,
        catalog: &Catalog,
    ) -> Result<Grant, String> {
        let valid = "valid roles: admin, bot, overlay";
        let role = role.ok_or_else(|| format!("role is required ({valid})"))?;
        let role = Role::parse(role).ok_or_else(|| format!("unknown role {role:?} ({valid})"))?;
        let event_types = match event_types {
            None => None,
            Some(_) if role != Role::Overlay => {
                return Err("event_types restricts overlay tokens only".into())
            }
            Some(names) if names.is_empty() => {
                return Err("event_types must name at least one type (omit it for all)".into())
            }
            Some(names) => {
                let mut types = Vec::new();
                for name in names {
                    let tau = tau_event_type(name.trim());
                    if !catalog.has_tau_type(&tau) {
                        return Err(format!("unknown event type {name:?}"));
                    }
                    if !types.contains(&tau) {
                        types.push(tau);
                    }
                }
                Some(types)
            }
        };
        Ok(Grant { role, event_types })
    }

    /// True if events of `tau_type` may reach this token.
    pub fn sees(&self, tau_type: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == tau_type))
    }
}

/// The sentence a 403 carries: which role is needed, and which one was used.
pub fn needs(need: Role, have: Role) -> String {
    let article = if need == Role::Bot { "a" } else { "an" };
    format!("this needs {article} {need} token (or stronger); this token's role is {have}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_nested_and_parse() {
        assert!(Role::Admin.covers(Role::Bot) && Role::Bot.covers(Role::Overlay));
        assert!(!Role::Overlay.covers(Role::Bot) && !Role::Bot.covers(Role::Admin));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(
            needs(Role::Bot, Role::Overlay),
            "this needs a bot token (or stronger); this token's role is overlay"
        );
    }

    #[test]
    fn restricted_grants_see_only_their_types() {
        let grant = Grant {
            role: Role::Overlay,
            event_types: Some(vec!["channel-follow".into()]),
        };
        assert!(grant.sees("channel-follow"));
        assert!(!grant.sees("channel-cheer"));
        assert!(Grant::role(Role::Overlay).sees("channel-cheer"));
    }

    #[test]
    fn requested_grants_are_checked() {
        let catalog = Catalog::get();
        let ask = |role: Option<&str>, types: Option<&[&str]>| {
            let types = types.map(|t| t.iter().map(|s| s.to_string()).collect());
            Grant::requested(role, types, catalog)
        };
        let follows = ask(Some("overlay"), Some(&["channel.follow", "channel-follow"]));
        assert_eq!(
            follows.unwrap().event_types,
            Some(vec!["channel-follow".into()])
        );
        assert_eq!(ask(Some("bot"), None), Ok(Grant::role(Role::Bot)));
        for (role, types) in [
            (None, None),
            (Some("root"), None),
            (Some("bot"), Some(&["channel.follow"][..])),
            (Some("overlay"), Some(&[][..])),
            (Some("overlay"), Some(&["channel.nope"][..])),
        ] {
            assert!(ask(role, types).is_err(), "{role:?} {types:?}");
        }
    }
}
