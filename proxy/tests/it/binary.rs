//! The binary: `--check`, errors at startup, and SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use crate::common::{POLICY, call_body, call_headers, start_upstream, temp_dir, write_policy};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-guard-proxy");

fn command() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCP_") {
            c.env_remove(k);
        }
    }
    c
}

#[tokio::test]
async fn check_validates_the_configuration_and_exits() {
    let dir = temp_dir();
    std::fs::write(dir.join("todo-policy.toml"), POLICY).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, include_str!("../../examples/mcp-guard-proxy.toml")).unwrap();
    let out = command()
        .args(["--check", "--config"])
        .arg(&good)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("https://mcp.example.com/todo/mcp -> http://127.0.0.1:8000/mcp"),
        "{said}"
    );
    // A policy file with an unknown table: the file, the line, the key.
    std::fs::write(
        dir.join("todo-policy.toml"),
        POLICY.replace("[tools]", "[tool]"),
    )
    .unwrap();
    let out = command()
        .args(["--check", "--config"])
        .arg(&good)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("mcp-guard-proxy: "), "{err}");
    assert!(err.contains("todo-policy.toml"), "{err}");
    assert!(err.contains("line 13"), "{err}");
    assert!(err.contains("unknown field `tool`"), "{err}");
    // Nothing configured: what to set.
    let out = command().arg("--check").output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP_ISSUER"));
    // A bad argument: usage, 2.
    let out = command().arg("--frobnicate").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: mcp-guard-proxy"));
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    sigterm_drains(false).await;
}

/// The same on one CPU (`taskset`), where the proxy runs one thread.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn on_one_cpu_it_serves_and_drains_the_same() {
    if std::process::Command::new("taskset")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("taskset (util-linux) is missing: skipped");
        return;
    }
    sigterm_drains(true).await;
}

#[cfg(unix)]
async fn sigterm_drains(one_cpu: bool) {
    let dev = mcp_resource_guard::testing::TestIssuer::start()
        .await
        .unwrap();
    let upstream = start_upstream().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = if one_cpu {
        let mut c = command();
        let std = c.as_std_mut();
        let mut t = tokio::process::Command::new("taskset");
        t.args(["-c", "0", BIN]);
        for (k, v) in std.get_envs() {
            match v {
                Some(v) => t.env(k, v),
                None => t.env_remove(k),
            };
        }
        t
    } else {
        command()
    };
    let mut child = child
        .env("MCP_UPSTREAM", &upstream)
        .env("MCP_ISSUER", dev.issuer())
        .env("MCP_RESOURCE", &resource)
        .env("MCP_BIND", format!("127.0.0.1:{port}"))
        .env("MCP_POLICY", write_policy(POLICY))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("listening on") {
            break;
        }
    }
    let token = dev.token("alice", &resource, "todo:read");
    let slow = tokio::spawn(
        reqwest::Client::new()
            .post(&resource)
            .headers(call_headers(&token))
            .body(call_body(1000))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "a new connection after SIGTERM is refused"
    );
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the proxy exits once drained")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
