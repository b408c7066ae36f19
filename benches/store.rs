//! Criterion benches of the shared store: the DPoP replay check
//! (`insert_if_absent`, a fresh key each time) through the in-process
//! `MemoryStore` (moka) and through `RedisStore` on a local redis-server,
//! one at a time (a round trip each) and 32 at once (the connection
//! manager pipelines them on one connection); and a revocation lookup
//! (`get_many` of three keys, one round trip).
//!
//! Run: `cd benches && cargo bench --bench store` (starts `redis-server`
//! from PATH on a free port, or uses `REDIS_URL`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_resource_guard::store::{KeyKind, MemoryStore, RedisStore, Store, StoreKey};

mod common;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn fresh_key() -> StoreKey {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    StoreKey::new(KeyKind::DpopProof, &[b"thumbprint", &n.to_be_bytes()])
}

/// A redis-server for the run (killed on drop), unless `REDIS_URL` is set.
struct Redis(Option<std::process::Child>, String);

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn redis() -> Redis {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Redis(None, url);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server), or REDIS_URL");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis(Some(child), format!("redis://127.0.0.1:{port}/"))
}

fn replay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = redis();
    let redis_store = rt.block_on(async { RedisStore::connect(server.1.clone()).await.unwrap() });
    let memory = MemoryStore::new(256 * 1024 * 1024);
    let ttl = Duration::from_secs(600);
    let stores: [(&str, &dyn Store); 2] = [("memory", &memory), ("redis", &redis_store)];
    let mut g = c.benchmark_group("store");
    for (name, store) in stores {
        g.bench_function(format!("replay_check/{name}"), |b| {
            b.iter(|| {
                let key = fresh_key();
                assert!(rt.block_on(store.insert_if_absent(&key, b"", ttl)).unwrap());
            })
        });
        g.bench_function(format!("replay_check_32_concurrent/{name}"), |b| {
            b.iter(|| {
                let keys: Vec<StoreKey> = (0..32).map(|_| fresh_key()).collect();
                rt.block_on(async {
                    let calls = keys.iter().map(|k| store.insert_if_absent(k, b"", ttl));
                    for r in futures_join(calls).await {
                        assert!(r.unwrap());
                    }
                })
            })
        });
        let keys = [fresh_key(), fresh_key(), fresh_key()];
        g.bench_function(format!("revocation_lookup_3_keys/{name}"), |b| {
            b.iter(|| {
                let v = rt.block_on(store.get_many(&keys)).unwrap();
                assert_eq!(v.len(), 3);
            })
        });
    }
    g.finish();
}

/// Polls every future to completion concurrently (as concurrent requests
/// would).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

criterion_group! {
    name = benches;
    config = crate::common::config();
    targets = replay
}
criterion_main!(benches);
