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

/// What a token may do; ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
}
