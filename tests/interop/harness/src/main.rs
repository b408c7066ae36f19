//! The interop suite's todo server, configured from the environment.
//!
//! ```text
//! cargo run -p interop-harness --bin todo_server
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_ISSUER` | the issuer URL of a real authorization server (keys found by discovery) | unset: development mode |
//! | `MCP_RESOURCE` | this server's canonical URL (the tokens' `aud`) | `http://127.0.0.1:3000/mcp` |
//! | `MCP_BIND` | the listen address | `127.0.0.1:3000` |
//! | `MCP_TYP_POLICY` | `allow-jwt` for issuers whose access tokens say `typ: JWT` (Keycloak, Auth0's default profile, Entra ID, Okta) | `at+jwt` only |
//! | `MCP_INTROSPECTION_CLIENT_ID`, `MCP_INTROSPECTION_CLIENT_SECRET` | with `MCP_ISSUER`: introspect tokens (RFC 7662) as this client (`client_secret_basic`; endpoint from the issuer's metadata) | no introspection |
//! | `MCP_INTROSPECTION_MODE` | `opaque` (tokens that are not JWTs), `every` (every token of the issuer) or `jwt-then-introspect` | `opaque` |
//! | `MCP_INTROSPECTION_TTL` | seconds an active introspection result is reused (0: ask every time) | `60` |
//! | `MCP_INTROSPECTION_JWT` | `1`: ask for RFC 9701 signed introspection responses | unset |
//! | `MCP_DPOP` | `allowed` (DPoP-bound tokens with the DPoP scheme, others as Bearer) or `required` (DPoP only) | unset: Bearer only |
//! | `MCP_DPOP_NONCES` | `1`: DPoP proofs need a server nonce (RFC 9449 §9); every DPoP answer carries a fresh one | unset |
//! | `MCP_REDIS_URL` | share state with the other replicas through this Redis (`redis://host:6379/`): DPoP proofs, revocations, introspection answers, session owners | unset: this process only |
//! | `MCP_REDIS_PREFIX` | the prefix of this deployment's Redis keys | `mcp-resource-guard` |
//! | `MCP_REVOCATION_RECHECK_MS` | with `MCP_REDIS_URL`: how long a replica serves a cached verification before it asks Redis whether the token was revoked elsewhere | `1000` |
//! | `MCP_METRICS_BIND` | serve Prometheus metrics, `/live`, `/ready` and an operator's `POST /revoke` on this address (keep it private) | unset: none |
//! | `MCP_REVOKE_TOKEN` | the operator's secret `POST /revoke` needs (`Authorization: Bearer …`, at least 16 characters) | unset: revocation off |
//! | `RUST_LOG` | what is logged (`tracing-subscriber` filter syntax) | `info`: every access decision, with why |
//! | `MCP_DEV_ISSUER_BIND` | development mode: where the dev issuer listens | `127.0.0.1:0` |
//! | `MCP_DEV_CLIENT_SECRET` | development mode: the secret of client `todo-agent` | random (from the system's CSPRNG) |
//!
//! Without `MCP_ISSUER` it runs in development mode: an embedded development
//! issuer (`TestIssuer`: JWKS, RFC 8414 metadata, a `client_credentials`
//! token endpoint) stands in for an authorization server, and the server
//! prints a ready-to-paste `curl` with a fresh token and a client id/secret
//! pair. The development issuer is not an authorization server.
//!
//! Tools: `whoami` (the caller's sub, client_id, scopes), `list_todos`
//! (`todo:read`), `add_todo {title}` (`todo:write`), `delete_todo {id}`
//! (`todo:delete`; only the caller's own items). Every MCP request needs
//! `todo:read`; `todo:admin` implies the three others; methods and tools the
//! server does not have are denied. It speaks both MCP wires: `2025-11-25`
//! (sessions, bound to the caller) and the stateless `2026-07-28`.
//!
//! Every access decision is logged on stderr (the audit trail, target
//! `mcp_resource_guard::audit`), with the reason of a refusal (e.g. `typ is
//! not at+jwt (see TypPolicy)`): never a token.

use interop_harness::{SCOPES, Store, app, guard_with_dpop, operations};
use mcp_resource_guard::dpop::{Dpop, DpopMode};
use mcp_resource_guard::introspection::{ClientAuth, Introspection, IntrospectionMode};
use mcp_resource_guard::testing::TestIssuer;
use mcp_resource_guard::{Issuer, TypPolicy};

/// `MCP_DPOP`: unset or `off`, `allowed`, `required`; `MCP_DPOP_NONCES=1`
/// asks proofs for server nonces (a fresh one on every DPoP answer).
fn dpop_setting() -> Result<Dpop, String> {
    let mode = match std::env::var("MCP_DPOP").as_deref() {
        Err(_) | Ok("" | "off") => return Ok(Dpop::default()),
        Ok("allowed") => DpopMode::Allowed,
        Ok("required") => DpopMode::Required,
        Ok(other) => {
            return Err(format!(
                "MCP_DPOP={other:?}: use allowed or required, or leave it unset"
            ));
        }
    };
    let dpop = Dpop::new(mode);
    if std::env::var("MCP_DPOP_NONCES").as_deref() == Ok("1") {
        let sealer = mcp_resource_guard::SealedState::new().map_err(|e| e.to_string())?;
        return Ok(dpop.nonces(sealer, true));
    }
    Ok(dpop)
}

/// 32 random bytes from the system's CSPRNG, hex-encoded: the development
/// client secret.
fn random_secret() -> Result<String, Box<dyn std::error::Error>> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system RNG failed")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `MCP_TYP_POLICY`: unset (`at+jwt` only) or `allow-jwt`.
fn typ_policy() -> Result<TypPolicy, String> {
    match std::env::var("MCP_TYP_POLICY").as_deref() {
        Err(_) | Ok("" | "at+jwt") => Ok(TypPolicy::AccessTokenOnly),
        Ok("allow-jwt") => Ok(TypPolicy::AllowJwt),
        Ok(other) => Err(format!(
            "MCP_TYP_POLICY={other:?}: use allow-jwt (for issuers that send typ: JWT) or leave it unset"
        )),
    }
}

/// The real authorization server of `MCP_ISSUER`, with introspection when
/// `MCP_INTROSPECTION_CLIENT_ID` is set.
fn real_issuer(issuer: String) -> Result<Issuer, String> {
    let issuer = Issuer::new(issuer);
    let Ok(client_id) = std::env::var("MCP_INTROSPECTION_CLIENT_ID") else {
        return Ok(issuer);
    };
    let secret = std::env::var("MCP_INTROSPECTION_CLIENT_SECRET")
        .map_err(|_| "MCP_INTROSPECTION_CLIENT_ID needs MCP_INTROSPECTION_CLIENT_SECRET")?;
    let mode = match std::env::var("MCP_INTROSPECTION_MODE").as_deref() {
        Err(_) | Ok("" | "opaque") => IntrospectionMode::OpaqueTokens,
        Ok("every") => IntrospectionMode::EveryToken,
        Ok("jwt-then-introspect") => IntrospectionMode::JwtThenIntrospect,
        Ok(other) => {
            return Err(format!(
                "MCP_INTROSPECTION_MODE={other:?}: use opaque, every or jwt-then-introspect"
            ));
        }
    };
    let ttl = match std::env::var("MCP_INTROSPECTION_TTL") {
        Err(_) => 60,
        Ok(s) => s
            .parse()
            .map_err(|_| format!("MCP_INTROSPECTION_TTL={s:?}: a number of seconds"))?,
    };
    let mut introspection = Introspection::new(ClientAuth::client_secret_basic(client_id, secret))
        .mode(mode)
        .positive_ttl(std::time::Duration::from_secs(ttl));
    if std::env::var("MCP_INTROSPECTION_JWT").as_deref() == Ok("1") {
        introspection = introspection.request_jwt_response();
    }
    Ok(issuer.introspection(introspection))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    operations::init_logging();
    let metrics = operations::metrics_from_env()?;
    let resource =
        std::env::var("MCP_RESOURCE").unwrap_or_else(|_| "http://127.0.0.1:3000/mcp".to_owned());
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let typ = typ_policy()?;
    let shared = operations::shared_store_from_env().await?;
    let guard = match std::env::var("MCP_ISSUER") {
        Ok(issuer) => {
            let guard = guard_with_dpop(
                &resource,
                real_issuer(issuer)?,
                typ,
                dpop_setting()?,
                shared,
            )?;
            if let Err(e) = guard.warm_up().await {
                eprintln!("warning: the issuer's keys are not available yet: {e}");
            }
            guard
        }
        Err(_) => {
            let bind_issuer: std::net::SocketAddr = std::env::var("MCP_DEV_ISSUER_BIND")
                .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
                .parse()?;
            let secret = match std::env::var("MCP_DEV_CLIENT_SECRET") {
                Ok(s) => s,
                Err(_) => random_secret()?,
            };
            let issuer = TestIssuer::builder()
                .bind(bind_issuer)
                .add_client("todo-agent", &secret, SCOPES)
                .start()
                .await?;
            let guard = guard_with_dpop(
                &resource,
                Issuer::new(issuer.issuer()).jwks_uri(issuer.jwks_uri()),
                typ,
                dpop_setting()?,
                shared,
            )?;
            operations::serve_from_env(&guard, metrics.clone()).await?;
            let url = guard.resource().as_str().to_owned();
            let all = issuer.token("alice", &url, "todo:admin");
            let ro = issuer.token("bob", &url, "todo:read");
            // One stateless request (MCP 2026-07-28): no initialize needed.
            let curl = |flags: &str, token: &str, tool: &str, args: &str| {
                format!(
                    "curl {flags} -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \\\n    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: {tool}' \\\n    -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{args},\"_meta\":{{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{{}}}}}}}}' \\\n    {url}"
                )
            };
            println!(
                "development mode: an embedded development issuer (not an authorization server) signs the tokens\n"
            );
            println!("MCP endpoint:      {url}");
            println!(
                "metadata:          curl -s {}",
                guard.resource().metadata_url()
            );
            println!("dev issuer:        {}", issuer.issuer());
            println!(
                "token endpoint:    {} (client_credentials)",
                issuer.token_endpoint()
            );
            println!("client_id:         todo-agent");
            println!("client_secret:     {secret}\n");
            println!(
                "whoami as alice (todo:admin, which implies the other scopes):\n{}\n",
                curl("-s", &all, "whoami", "{}")
            );
            println!(
                "add_todo as bob (todo:read only: 403 insufficient_scope, scope=\"todo:write\", what the call still needs):\n{}\n",
                curl("-i", &ro, "add_todo", r#"{"title":"milk"}"#)
            );
            println!(
                "a fresh token from the token endpoint:\ncurl -s -u todo-agent:{secret} -d grant_type=client_credentials -d scope=todo:read -d resource={url} {}\n",
                issuer.token_endpoint()
            );
            println!(
                "the example agent (client credentials, trusting this issuer only; steps up to todo:write):\nAGENT_ISSUER={} AGENT_CLIENT_ID=todo-agent AGENT_CLIENT_SECRET={secret} \\\n  cargo run --all-features --example agent -- {url} add_todo '{{\"title\":\"milk\"}}'\n",
                issuer.issuer()
            );
            println!(
                "a real authorization server instead: MCP_ISSUER=https://auth.example.com cargo run -p interop-harness --bin todo_server\n"
            );
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            println!("listening on http://{bind}");
            axum::serve(listener, app(guard, Store::default())).await?;
            // The issuer lives as long as the server.
            drop(issuer);
            return Ok(());
        }
    };
    operations::serve_from_env(&guard, metrics.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{bind}");
    axum::serve(listener, app(guard, Store::default())).await?;
    Ok(())
}
