//! The Helix path builders: `tau_twitch::client::join` (every Helix and
//! OAuth URL the relay and the operator build, via `Client::helix_url` and
//! the relay's `twitch::helix::helix_url`), and the passthrough's policy
//! (`access::helix::plan`) that turns a caller's raw path into segments.
//!
//! Asserts: a built URL keeps the base's scheme, host and port, its path
//! is the base path plus exactly the given segments (each decoding back to
//! itself: none can climb out or be read as a dot segment; `.` and `..`
//! are refused), it has no fragment, and it reads back as itself; a passthrough path that is planned is made
//! of plain `[A-Za-z0-9_-]` segments, lands at `/helix/<path>`, and gets
//! the app token only for an admin on the app allow-list, a bot only on
//! its allow-list with the user token, an overlay never.
#![no_main]

use arbitrary::Arbitrary;
use axum::http::Method;
use libfuzzer_sys::fuzz_target;
use tau_relay::{
    access::{
        helix::{plan, APP_CALLS, BOT_CALLS},
        Role,
    },
    twitch::helix::{helix_url, TokenKind},
};
use url::Url;

const BASES: [&str; 4] = [
    "https://api.twitch.tv/helix",
    "https://api.twitch.tv/helix/",
    "http://127.0.0.1:8080/mock/helix",
    "https://id.twitch.tv/oauth2/",
];

#[derive(Arbitrary, Debug)]
struct Input {
    base: u8,
    segments: Vec<String>,
    query: Option<String>,
    role: u8,
    method: u8,
    token_type: Option<String>,
    raw_path: String,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .expect("a built segment decodes to UTF-8")
        .into_owned()
}

fn check_join(base: &Url, segments: &[String], query: Option<&str>) {
    let dots = segments.iter().any(|s| s == "." || s == "..");
    let Ok(url) = tau_twitch::client::join(base, segments, query) else {
        assert!(dots, "refused {segments:?}");
        return;
    };
    assert!(!dots, "built {url} from dot segments {segments:?}");
    assert_eq!(url.scheme(), base.scheme());
    assert_eq!(url.host_str(), base.host_str());
    assert_eq!(url.port(), base.port());
    assert_eq!(url.fragment(), None, "{url}");
    let prefix: Vec<&str> = base
        .path_segments()
        .unwrap()
        .filter(|s| !s.is_empty())
        .collect();
    let path: Vec<&str> = url.path_segments().unwrap().collect();
    assert_eq!(
        path.len(),
        prefix.len() + segments.len(),
        "{url} from {segments:?}"
    );
    assert_eq!(
        &path[..prefix.len()],
        prefix.as_slice(),
        "{url} left its base"
    );
    for (built, given) in path[prefix.len()..].iter().zip(segments) {
        assert_eq!(decode(built), *given, "{url}");
    }
    assert_eq!(
        Url::parse(url.as_str()).as_ref(),
        Ok(&url),
        "{url} does not read back"
    );
}

fuzz_target!(|input: Input| {
    let base = Url::parse(BASES[usize::from(input.base) % BASES.len()]).unwrap();
    check_join(&base, &input.segments, input.query.as_deref());

    let role = Role::ALL[usize::from(input.role) % Role::ALL.len()];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let method = &methods[usize::from(input.method) % methods.len()];
    let Ok(call) = plan(role, method, &input.raw_path, input.token_type.as_deref()) else {
        return;
    };
    assert!(call.segments.iter().all(|s| !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')));
    assert_eq!(call.path(), input.raw_path);
    let helix = Url::parse(BASES[0]).unwrap();
    let url = helix_url(&helix, &call.segments, None).unwrap();
    assert_eq!(url.path(), format!("/helix/{}", input.raw_path));
    check_join(&helix, &call.segments, None);
    let listed = |list: &[(&str, &str)]| {
        list.iter()
            .any(|(m, p)| *m == method.as_str() && *p == call.path())
    };
    match (role, call.token) {
        (Role::Overlay, _) => panic!("an overlay token reached Helix: {call:?}"),
        (Role::Bot, TokenKind::App) => panic!("a bot got the app token: {call:?}"),
        (Role::Bot, TokenKind::User) => assert!(listed(BOT_CALLS), "{call:?}"),
        (Role::Admin, TokenKind::App) => assert!(listed(APP_CALLS), "{call:?}"),
        (Role::Admin, TokenKind::User) => {}
    }
});
