//! Decision events are emitted for every outcome and never carry a token.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use http::StatusCode;
use serde_json::json;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn events_name_the_decision_and_never_the_token() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let good = token(&claims());
    let expired = token(&claims_with(json!({"exp": now() - 3600})));
    let stranger = keys().stranger.sign(&claims());
    let app = app(guard());
    assert_eq!(
        send(&app, request("/mcp", Some(&good))).await.status,
        StatusCode::OK
    );
    for t in [&expired, &stranger, &"not-a-jwt".to_owned()] {
        assert_eq!(
            send(&app, request("/mcp", Some(t))).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send(&app, request("/mcp", None)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("outcome=\"allow\""), "{out}");
    assert!(out.contains("sub=\"alice\""), "{out}");
    assert!(out.contains("client_id=\"agent-1\""), "{out}");
    assert!(out.contains("reason=\"expired\""), "{out}");
    assert!(out.contains("reason=\"unknown_key\""), "{out}");
    assert!(out.contains("reason=\"missing_token\""), "{out}");
    assert!(out.contains("mcp_resource_guard::decision"), "{out}");
    for t in [&good, &expired, &stranger] {
        for segment in t.split('.') {
            // Any 16-character window of any segment.
            for w in segment.as_bytes().windows(16).step_by(8) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!out.contains(w), "token material {w} in the logs");
            }
        }
    }
    assert!(!out.contains("not-a-jwt"));
}
