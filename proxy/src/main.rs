//! `mcp-guard-proxy [--config FILE] [--check]`: see the README.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mcp_guard_proxy::config::{self, Config};
use mcp_guard_proxy::{app, ops, server};

/// mimalloc: fewer instructions per allocation than the system allocator
/// on the request path (BENCHMARKS.md, "mcp-guard-proxy side by side").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: mcp-guard-proxy [--config FILE] [--check]

  --config FILE  the configuration (TOML); the MCP_* environment variables
                 override it, and without it they are the configuration
  --check        check the configuration (and the policy files it names),
                 print what it protects, and exit: 0 when it is valid
  --version      print the version

The configuration reference: the README of mcp-guard-proxy.";

struct Args {
    config: Option<String>,
    check: bool,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        config: None,
        check: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                out.config = Some(it.next().ok_or("--config needs a file")?);
            }
            "--check" => out.check = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--version" | "-V" => {
                println!("mcp-guard-proxy {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mcp-guard-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match config::load(args.config.as_deref(), &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            // The error says what to fix (file errors name the line).
            eprintln!("mcp-guard-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        for r in &config.routes {
            println!("{} -> {}", r.resource, r.upstream);
        }
        println!("the configuration is valid");
        return ExitCode::SUCCESS;
    }
    // One CPU to run on (taskset, cpusets): one thread, no work stealing.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-guard-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-guard-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every access decision (the audit trail) and the crate's other events
/// on stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    // First, so the startup's key fetch is counted.
    let metrics = match &config.ops {
        Some(_) => Some(metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?),
        None => None,
    };
    #[cfg(feature = "tls")]
    let tls = config
        .tls
        .as_ref()
        .map(mcp_guard_proxy::tls::acceptor)
        .transpose()?;
    #[cfg(not(feature = "tls"))]
    let tls: server::Tls = match &config.tls {
        Some(_) => {
            return Err(
                "[tls] needs the tls feature: cargo install --path proxy --features tls".into(),
            );
        }
        None => None,
    };
    let app = app::build(&config).await?;
    for g in &app.guards {
        if let Err(e) = g.warm_up().await {
            tracing::warn!(resource = g.resource().as_str(), error = %e, "the issuer's keys are not available yet");
        }
    }
    let draining = Arc::new(AtomicBool::new(false));
    if let Some(o) = &config.ops {
        let listener = tokio::net::TcpListener::bind(o.bind).await?;
        println!("operations (probes, metrics, revoke) on http://{}", o.bind);
        let router = ops::router(ops::Ops {
            guards: app.guards.clone().into(),
            metrics,
            revoke_token: o
                .revoke_token
                .as_ref()
                .map(|t| Arc::new(config::Secret(t.0.clone()))),
            draining: draining.clone(),
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the operations port stopped");
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    for r in &config.routes {
        println!("guarding {} as {}", r.upstream, r.resource);
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("listening on {scheme}://{}", listener.local_addr()?);
    let shutdown = async move {
        signal().await;
        draining.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: no new connections, draining in-flight requests");
    };
    server::serve(listener, app.front, &config.limits, tls, shutdown).await;
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
