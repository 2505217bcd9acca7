//! History query and cursor parsing: `GET /api/v1/twitch-events?<query>`
//! decoded as axum's `Query` extractor does, checked by
//! `ListQuery::request`, and the `next`/`previous` links `ListQuery::page_url`
//! builds from it; plus `PageCursor::decode` on the raw input.
//!
//! Asserts: a decoded cursor round-trips (`decode(encode(c)) == c`); an
//! accepted request's page size is 1 to `MAX_PAGE_SIZE`; a page link stays
//! on the relay's public origin and path, and reading it back gives the
//! same query with the link's cursor, which decodes to the cursor it was
//! built from.
#![no_main]

use axum::{extract::Query, http::Uri};
use libfuzzer_sys::fuzz_target;
use tau_relay::{
    api::events::{ListQuery, MAX_PAGE_SIZE},
    store::PageCursor,
};

const PATH: &str = "/api/v1/twitch-events";

fn round_trips(cursor: PageCursor) {
    assert_eq!(PageCursor::decode(&cursor.encode()), Some(cursor));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(cursor) = PageCursor::decode(text) {
        round_trips(cursor);
    }
    let Ok(uri) = format!("{PATH}?{text}").parse::<Uri>() else {
        return;
    };
    let Ok(Query(query)) = Query::<ListQuery>::try_from_uri(&uri) else {
        return;
    };
    let Ok(request) = query.request(None) else {
        return;
    };
    assert!((1..=MAX_PAGE_SIZE).contains(&request.limit));
    let seq = request.limit * 7919 - text.len() as i64;
    let cursors = [
        request.cursor,
        Some(PageCursor::Before(seq)),
        Some(PageCursor::After(i64::MIN.wrapping_add(seq))),
    ];
    let public = url::Url::parse("https://tau.example.com/ignored/path").unwrap();
    for cursor in cursors.into_iter().flatten() {
        round_trips(cursor);
        let link = query.page_url(&public, cursor);
        let parsed = url::Url::parse(&link).expect("a page link is a URL");
        assert_eq!(parsed.origin(), public.origin(), "{link}");
        assert_eq!(parsed.path(), PATH, "{link}");
        let uri: Uri = link.parse().expect("a page link is a URI");
        let Query(back) = Query::<ListQuery>::try_from_uri(&uri).expect("a page link reads back");
        let mut expected = query.clone();
        expected.cursor = Some(cursor.encode());
        assert_eq!(back, expected, "{link}");
        let again = back.request(None).expect("a page link is a valid request");
        assert_eq!(again.cursor, Some(cursor));
        assert_eq!(again.limit, request.limit);
    }
});
