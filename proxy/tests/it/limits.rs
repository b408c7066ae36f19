//! Each limit on a real socket, and the graceful shutdown: in-flight
//! requests finish, new connections are refused, the drain time bounds it.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{call_body, call_headers, start_proxy};

/// Everything the server sends on `stream` until it closes (or 10 s).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A raw HTTP/1.1 request head for a stateless call with `token`.
fn head(token: &str, content_length: usize) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: whoami\r\ncontent-length: {content_length}\r\nconnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn a_body_slower_than_the_body_read_timeout_is_408() {
    let p = start_proxy("[limits]\nbody_read_timeout_ms = 300\n").await;
    let body = call_body(0);
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(head(&p.token(), body.len()).as_bytes())
        .await
        .unwrap();
    // Half the body, then nothing.
    s.write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("limits.body_read_timeout_ms"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The whole body in time passes.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(format!("{}{body}", head(&p.token(), body.len())).as_bytes())
        .await
        .unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413_from_the_proxy() {
    let p = start_proxy("[limits]\nmax_body_bytes = 1000\n").await;
    let big = call_body(0).replace(
        "whoami\"",
        &format!("whoami\", \"pad\": \"{}\"", "x".repeat(2000)),
    );
    // Sent with its length, and chunked (no length declared).
    let chunked = futures_util::stream::iter([Ok::<_, std::io::Error>(big.clone())]);
    for body in [
        reqwest::Body::from(big.clone()),
        reqwest::Body::wrap_stream(chunked),
    ] {
        let res = reqwest::Client::new()
            .post(p.url())
            .headers(call_headers(&p.token()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413);
        assert!(
            res.text().await.unwrap().contains("limits.max_body_bytes"),
            "the proxy's own limit answers"
        );
    }
    // A declared length over the limit is refused before the body comes.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(head(&p.token(), 10_000_000).as_bytes())
        .await
        .unwrap();
    s.write_all(b"{\"jsonrpc\"").await.unwrap();
    let started = Instant::now();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_head_not_complete_within_the_header_read_timeout_closes_the_connection() {
    let p = start_proxy("[limits]\nheader_read_timeout_ms = 300\n").await;
    // Part of a head, then nothing.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut s).await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    assert!(!answer.contains("200"), "{answer}");
    // Nothing at all: closed too.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    let started = Instant::now();
    assert_eq!(read_all(&mut s).await, "");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_connection_over_max_connections_is_answered_503_and_closed() {
    let p = start_proxy("[limits]\nmax_connections = 1\n").await;
    // The first connection stays open (keep-alive).
    let first = reqwest::Client::new();
    let ok = first
        .post(p.url())
        .headers(call_headers(&p.token()))
        .body(call_body(0))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let second = reqwest::Client::new();
    let res = second
        .post(p.url())
        .headers(call_headers(&p.token()))
        .body(call_body(0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.text().await.unwrap().contains("limits.max_connections"));
    // The first connection still works.
    let again = first
        .post(p.url())
        .headers(call_headers(&p.token()))
        .body(call_body(0))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_request_over_max_in_flight_is_answered_503_with_retry_after() {
    let p = start_proxy("[limits]\nmax_in_flight = 1\n").await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn(
        client
            .post(p.url())
            .headers(call_headers(&p.token()))
            .body(call_body(1500))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = client
        .post(p.url())
        .headers(call_headers(&p.token()))
        .body(call_body(0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.text().await.unwrap().contains("limits.max_in_flight"));
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    // Room again.
    let res = client
        .post(p.url())
        .headers(call_headers(&p.token()))
        .body(call_body(0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn http2_is_served_on_the_same_port() {
    let p = start_proxy("").await;
    let res = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(p.url())
        .headers(call_headers(&p.token()))
        .body(call_body(0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn on_shutdown_in_flight_requests_finish_and_new_connections_are_refused() {
    let mut p = start_proxy("[limits]\nshutdown_drain_ms = 10000\n").await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn(
        client
            .post(p.url())
            .headers(call_headers(&p.token()))
            .body(call_body(1000))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.shutdown.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The listener is closed: a new connection is refused.
    assert!(TcpStream::connect(p.addr).await.is_err());
    // The request in flight finishes.
    let res = slow.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    // Then the server is done.
    tokio::time::timeout(Duration::from_secs(5), p.done)
        .await
        .expect("drained")
        .unwrap();
}

#[tokio::test]
async fn the_drain_time_bounds_the_shutdown() {
    let mut p = start_proxy("[limits]\nshutdown_drain_ms = 300\n").await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn(
        client
            .post(p.url())
            .headers(call_headers(&p.token()))
            .body(call_body(5000))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    p.shutdown.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), p.done)
        .await
        .expect("the drain time ran out and serve returned")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(slow);
}

/// Connections the proxy opened to the upstream for two waves of four
/// concurrent calls, keeping at most `pool_idle` idle in between.
async fn upstream_connections(pool_idle: usize) -> usize {
    let (upstream, peers) = crate::common::start_upstream_seeing_peers().await;
    let p = crate::common::start_proxy_to(
        &format!("[limits]\nupstream_pool_idle = {pool_idle}\n"),
        &upstream,
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let wave: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(
                    client
                        .post(p.url())
                        .headers(call_headers(&p.token()))
                        .body(call_body(300))
                        .send(),
                )
            })
            .collect();
        for call in wave {
            assert_eq!(call.await.unwrap().unwrap().status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peers.lock().unwrap().len()
}

#[tokio::test]
async fn the_upstream_pool_keeps_at_most_upstream_pool_idle_connections() {
    // Four kept: the second wave reuses them all.
    assert_eq!(upstream_connections(64).await, 4);
    // One kept: the second wave opens three more.
    assert_eq!(upstream_connections(1).await, 7);
}

#[tokio::test]
async fn connections_the_upstream_closes_are_not_reused() {
    let (upstream, peers) = crate::common::start_upstream_seeing_peers().await;
    let p = crate::common::start_proxy_to("", &upstream).await;
    let client = reqwest::Client::new();
    let closing = call_body(0).replace("\"sleep_ms\":0", "\"sleep_ms\":0,\"close\":true");
    for _ in 0..5 {
        let res = client
            .post(p.url())
            .headers(call_headers(&p.token()))
            .body(closing.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("connection").is_none_or(|v| v != "close"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(peers.lock().unwrap().len(), 5, "a new connection each time");
}

/// An upstream that answers one request per connection, then closes the
/// connection 50 ms later without saying so (as an idle timeout does).
async fn start_closing_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                // The head, then as many body bytes as it declares.
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let body = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_used() {
    let p = crate::common::start_proxy_to("", &start_closing_upstream().await).await;
    let client = reqwest::Client::new();
    for _ in 0..4 {
        let res = client
            .post(p.url())
            .headers(call_headers(&p.token()))
            .body(call_body(0))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        // The upstream has closed the pooled connection by now.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
