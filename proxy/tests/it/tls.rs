//! TLS termination (feature `tls`): HTTP/2 and HTTP/1.1 by ALPN, and a
//! client that never completes the handshake is cut off.

use std::time::{Duration, Instant};

use mcp_guard_proxy::config::TlsConfig;
use tokio::io::AsyncReadExt;

use crate::common::{call_body, call_headers, start_proxy_with, start_upstream, temp_dir};

/// A self-signed certificate for `localhost`: the acceptor and the PEM.
fn acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = temp_dir();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let tls = TlsConfig {
        cert_file: cert_file.display().to_string(),
        key_file: key_file.display().to_string(),
    };
    (
        mcp_guard_proxy::tls::acceptor(&tls).unwrap(),
        cert.cert.pem(),
    )
}

#[tokio::test]
async fn https_with_http2_and_http1_by_alpn() {
    let (acceptor, pem) = acceptor();
    let p = start_proxy_with("", &start_upstream().await, "https", Some(acceptor)).await;
    let root = reqwest::Certificate::from_pem(pem.as_bytes()).unwrap();
    for (h1, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([root.clone()])
            .resolve("localhost", p.addr);
        if h1 {
            b = b.http1_only();
        }
        let res = b
            .build()
            .unwrap()
            .post(&p.resource)
            .headers(call_headers(&p.token()))
            .body(call_body(0))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), version);
    }
    // A bad key file: an error that names it.
    let Err(e) = mcp_guard_proxy::tls::acceptor(&TlsConfig {
        cert_file: "/nonexistent/cert.pem".into(),
        key_file: "/nonexistent/key.pem".into(),
    }) else {
        panic!("a missing certificate file was accepted")
    };
    let e = e.to_string();
    assert!(e.contains("cert_file"), "{e}");
}

#[tokio::test]
async fn a_handshake_not_done_within_the_header_read_timeout_is_cut_off() {
    let (acceptor, _) = acceptor();
    let p = start_proxy_with(
        "[limits]\nheader_read_timeout_ms = 300\n",
        &start_upstream().await,
        "https",
        Some(acceptor),
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
}
