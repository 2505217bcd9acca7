//! The TAU client handshake: the first text frame of `/ws/twitch-events/`,
//! `{"token": "...", "events": [...], "since": "<id>"}`, through
//! `hub::handshake::parse` and `hub::handshake::wanted_types` (everything
//! `accept` does besides the two store lookups).
//!
//! Asserts: an accepted frame has a non-empty token and, re-encoded, parses
//! to the same hello (`since` round-trips as a UUID); with every grant
//! tried (unrestricted, restricted to a few types, restricted to none) the
//! types a client gets are known to the catalog and visible to its grant,
//! a restricted grant never yields "everything", and an unrestricted one
//! that asked for nothing gets everything.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tau_relay::{
    access::{Grant, Role},
    catalog::Catalog,
    hub::handshake,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(hello) = handshake::parse(text) else {
        return;
    };
    assert!(!hello.token.is_empty());
    let again = json!({
        "token": hello.token,
        "events": hello.events,
        "since": hello.since.map(|id| id.to_string()),
    })
    .to_string();
    assert_eq!(handshake::parse(&again).as_ref(), Ok(&hello), "{again}");

    let catalog = Catalog::get();
    let some: Vec<String> = catalog.tau_types().into_iter().step_by(7).collect();
    let grants = [
        Grant::role(Role::Overlay),
        Grant {
            role: Role::Overlay,
            event_types: Some(some),
        },
        Grant {
            role: Role::Bot,
            event_types: Some(Vec::new()),
        },
    ];
    for grant in &grants {
        match handshake::wanted_types(hello.events.clone(), catalog, grant) {
            Ok(None) => {
                assert!(grant.event_types.is_none() && hello.events.is_none());
            }
            Ok(Some(types)) => {
                for tau in &types {
                    assert!(catalog.has_tau_type(tau) || hello.events.is_none(), "{tau}");
                    assert!(grant.sees(tau), "{tau} is not the grant's");
                }
                if let Some(asked) = &hello.events {
                    assert!(types.len() <= asked.len());
                }
            }
            Err(message) => assert!(!message.is_empty()),
        }
    }
});
