//! The pages the OAuth callback answers with: the person in the browser
//! just came back from Twitch, so every outcome (connected, declined, wrong
//! account, expired or broken link, a failure) is a page in words with a
//! way back to the dashboard's setup view, never a JSON error.
//!
//! Each page is self-contained: one inline stylesheet, no script, no
//! external resource. Its Content-Security-Policy allows exactly that
//! stylesheet (by its SHA-256 hash) and nothing else. Every piece of text
//! that is not a literal here is escaped with [`html`].

use std::sync::LazyLock;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};

/// Where "Back to the dashboard" leads: its setup view.
pub const BACK: &str = "/#/setup";
/// Where it leads after authorizing a chat bot: the dashboard's bots view.
pub const BACK_TO_BOTS: &str = "/#/bots";

/// The stylesheet: light by default, dark with `prefers-color-scheme`
/// (TAU's palette: background #0e0e10, surface #18181b, accent #bf94ff).
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f7f7f8;--surface:#ffffff;--text:#1f1f23;--muted:#53535f;\
--border:#dedee3;--accent:#772ce8;--on-accent:#ffffff;--ok:#00875a;--warn:#a15c00;--bad:#c4314b}\
@media (prefers-color-scheme:dark){:root{--bg:#0e0e10;--surface:#18181b;--text:#efeff1;\
--muted:#adadb8;--border:#2f2f35;--accent:#bf94ff;--on-accent:#0e0e10;--ok:#5cd6a0;--warn:#ffc85c;--bad:#ff8a9a}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:1rem;\
background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
main{width:100%;max-width:34rem;background:var(--surface);border:1px solid var(--border);\
border-top:4px solid var(--tone);border-radius:12px;padding:1.5rem 1.5rem 1.75rem}\
main.ok{--tone:var(--ok)}main.warn{--tone:var(--warn)}main.bad{--tone:var(--bad)}\
.brand{margin:0;font-weight:700;letter-spacing:.08em;color:var(--accent)}\
h1{margin:.25rem 0 1rem;font-size:1.5rem;line-height:1.25}\
p{margin:0 0 1rem}code{font-size:.9em;overflow-wrap:anywhere}\
.note{border-left:4px solid var(--warn);padding:.5rem .75rem;background:var(--bg)}\
a.back{display:inline-block;margin-top:.5rem;padding:.75rem 1.25rem;border-radius:8px;\
background:var(--accent);color:var(--on-accent);font-weight:600;text-decoration:none}\
a.back:focus-visible{outline:3px solid var(--text);outline-offset:2px}\
a.back:hover{filter:brightness(1.08)}";

/// The pages' policy: no script, no fetch, no frame; only [`STYLE`].
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// Escapes text for an HTML page.
pub fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// How an outcome went, which colours the page's top edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done.
    Ok,
    /// Done, with something to fix.
    Warn,
    /// Not done.
    Bad,
}

/// One outcome, as a page.
#[derive(Debug)]
pub struct Page {
    /// The HTTP status.
    pub status: StatusCode,
    /// How it went.
    pub tone: Tone,
    /// The heading, a literal ("Connected to Twitch").
    pub heading: &'static str,
    /// The message: paragraphs of HTML whose text is already escaped.
    pub message: String,
    /// Where "Back to the dashboard" leads ([`BACK`] or [`BACK_TO_BOTS`]).
    pub back: &'static str,
}

impl Page {
    /// A page of `status` whose message is one paragraph of plain `text`.
    pub fn text(status: StatusCode, tone: Tone, heading: &'static str, text: &str) -> Page {
        Page {
            status,
            tone,
            heading,
            message: format!("<p>{}</p>", html(text)),
            back: BACK,
        }
    }

    /// The same page, its link leading to `back`.
    pub fn back_to(mut self, back: &'static str) -> Page {
        self.back = back;
        self
    }

    /// The whole document.
    pub fn document(&self) -> String {
        let tone = match self.tone {
            Tone::Ok => "ok",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
        };
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"light dark\">\
             <title>{heading} · TAU</title><style>{STYLE}</style></head>\
             <body><main class=\"{tone}\"><p class=\"brand\">TAU</p><h1>{heading}</h1>{message}\
             <a class=\"back\" href=\"{back}\">Back to the dashboard</a></main></body></html>",
            heading = html(self.heading),
            message = self.message,
            back = self.back,
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, Html(self.document())).into_response();
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&CSP).expect("the policy is ASCII"),
        );
        response
    }
}

/// A chat bot was authorized (or authorized again: its tokens replaced).
pub fn bot_authorized(name: &str, created: bool) -> Page {
    Page {
        status: StatusCode::OK,
        tone: Tone::Ok,
        heading: "Chat bot authorized",
        message: format!(
            "<p>The bot <b>{}</b> is now authorized{}. Add it to channels and send chat as \
             it from the dashboard's Bots view.</p>",
            html(name),
            if created {
                ""
            } else {
                " again: its new tokens replace the old ones"
            },
        ),
        back: BACK_TO_BOTS,
    }
}

/// Someone authorized a chat bot while logged into Twitch as the broadcaster.
pub fn bot_is_broadcaster(login: &str) -> Page {
    Page {
        status: StatusCode::FORBIDDEN,
        tone: Tone::Bad,
        heading: "That is the broadcaster's account",
        message: format!(
            "<p>You authorized the chat bot as <b>{}</b>, the broadcaster TAU already serves. \
             Nothing was stored, and that authorization was revoked.</p><p>A bot is another \
             Twitch account: open a private browser window, log into Twitch there as the bot, \
             and start Add bot again from that window.</p>",
            html(login),
        ),
        back: BACK_TO_BOTS,
    }
}

/// Twitch refused the code, or storing the bot failed.
pub fn bot_failed(what: &str) -> Page {
    Page::text(
        StatusCode::BAD_GATEWAY,
        Tone::Bad,
        "The chat bot was not added",
        &format!("{what} Nothing was stored. Start again with Add bot in the dashboard."),
    )
    .back_to(BACK_TO_BOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy's hash is the stylesheet's, and the page holds exactly
    /// that stylesheet and no script or external resource.
    #[test]
    fn the_policy_allows_exactly_the_inline_stylesheet() {
        let page = Page::text(StatusCode::OK, Tone::Ok, "Connected to Twitch", "hi");
        let document = page.document();
        let start = document.find("<style>").unwrap() + "<style>".len();
        let end = document.find("</style>").unwrap();
        let hash = STANDARD.encode(Sha256::digest(&document.as_bytes()[start..end]));
        assert!(CSP.contains(&format!("'sha256-{hash}'")), "{}", *CSP);
        assert!(CSP.starts_with("default-src 'none'"));
        for outside in ["<script", "src=", "http://", "https://", "@import"] {
            assert!(!document.contains(outside), "{outside}");
        }
        assert!(document.contains("prefers-color-scheme:dark"));
        assert!(document.contains(&format!("href=\"{BACK}\"")));
    }

    #[test]
    fn text_is_escaped() {
        let page = Page::text(
            StatusCode::BAD_REQUEST,
            Tone::Bad,
            "Twitch authorization was not granted",
            "<script>alert('x')</script> & more",
        );
        let document = page.document();
        assert!(!document.contains("<script>"));
        assert!(document.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
    }
}
