//! The Authorization header parser: any number of header values (split on
//! NUL) and a query string. Never panics; a Bearer token that comes out is
//! token68 and was in one of the header values.
#![no_main]

use http::{HeaderMap, HeaderValue, Uri, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use mcp_resource_guard::fuzzing::{Authorization, parse_authorization};

fuzz_target!(|data: &[u8]| {
    let (query, headers) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let mut map = HeaderMap::new();
    for v in headers.split(|b| *b == 0) {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            map.append(AUTHORIZATION, v);
        }
    }
    let uri = std::str::from_utf8(query)
        .ok()
        .and_then(|q| format!("/mcp?{q}").parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("/mcp"));
    if let Ok(Authorization::Bearer(t)) = parse_authorization(&map, &uri) {
        assert!(!t.is_empty());
        assert!(t.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(map.get_all(AUTHORIZATION).iter().count(), 1);
    }
});
