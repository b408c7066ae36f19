//! A tiny HTTP/1.1 server on 127.0.0.1 with fault injection and hit counting,
//! written on raw sockets so that it can misbehave in every way a real
//! JWKS or discovery endpoint can.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this JSON body and extra headers.
    Json(String, Vec<(String, String)>),
    /// This status with a small body.
    Status(u16),
    /// Wait, then answer 200 with this body.
    Slow(Duration, String),
    /// Close the connection without answering.
    Close,
    /// 302 to this location.
    Redirect(String),
}

#[derive(Clone)]
pub struct FaultServer {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl FaultServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let s = FaultServer {
            base,
            routes: Arc::default(),
            hits: Arc::default(),
        };
        let server = s.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    *server.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let reply = server.routes.lock().unwrap().get(&path).cloned();
                    let (status, headers, body) = match reply {
                        None => (404, vec![], String::new()),
                        Some(Reply::Json(body, headers)) => (200, headers, body),
                        Some(Reply::Status(code)) => (code, vec![], "error".to_owned()),
                        Some(Reply::Slow(d, body)) => {
                            tokio::time::sleep(d).await;
                            (200, vec![], body)
                        }
                        Some(Reply::Close) => return,
                        Some(Reply::Redirect(to)) => {
                            (302, vec![("location".to_owned(), to)], String::new())
                        }
                    };
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.write_all(body.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    pub fn json(&self, path: &str, body: &serde_json::Value) {
        self.route(path, Reply::Json(body.to_string(), vec![]));
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Waits (bounded) until `path` has been hit `n` times.
    pub async fn wait_hits(&self, path: &str, n: usize) -> bool {
        for _ in 0..500 {
            if self.hits(path) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}
