//! The crate's client under the MCP conformance suite's client contract:
//! the server URL is the last argument, the scenario is in
//! `MCP_CONFORMANCE_SCENARIO`, its credentials in `MCP_CONFORMANCE_CONTEXT`
//! (JSON), the wire revision in `MCP_CONFORMANCE_PROTOCOL_VERSION`.
//!
//! ```text
//! npx @modelcontextprotocol/conformance client --scenario auth/metadata-default \
//!   --command "target/debug/conformance_client"
//! ```
//!
//! Every scenario goes through [`AuthorizedClient`]: the MCP requests
//! themselves (initialize on 2025-11-25, stateless calls on 2026-07-28)
//! produce the 401 discovery starts from. The suite starts its
//! authorization servers on ephemeral loopback ports and never says which,
//! so this harness (and only this harness) trusts any loopback issuer.

use std::error::Error;

use mcp_resource_guard::Algorithm;
use mcp_resource_guard::client::{
    Assertion, AuthorizationCode, AuthorizedClient, ClientError, DpopKey, EnterpriseIdp, Grant,
    UserAgent,
};
use mcp_resource_guard::dangerous::trust_any_loopback_issuer;
use mcp_resource_guard::introspection::{ClientAssertionKey, ClientAuth};
use serde_json::{Value, json};

/// The "browser": the suite's authorization endpoint redirects at once.
#[derive(Debug)]
struct FollowOnce(reqwest::Client);

#[async_trait::async_trait]
impl UserAgent for FollowOnce {
    async fn authorize(&self, url: &str) -> Result<String, ClientError> {
        let fail = |s: &str| ClientError::AuthorizationResponse(s.to_owned());
        let res = self
            .0
            .get(url)
            .send()
            .await
            .map_err(|_| fail("unreachable"))?;
        let location = res
            .headers()
            .get("location")
            .ok_or_else(|| fail("no redirect"))?;
        Ok(location
            .to_str()
            .map_err(|_| fail("bad location"))?
            .to_owned())
    }
}

fn grant(scenario: &str, ctx: &Value) -> Result<Grant, Box<dyn Error>> {
    let s = |k: &str| {
        ctx[k]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("context has no {k}"))
    };
    Ok(match scenario {
        "auth/client-credentials-basic" => Grant::client_credentials(
            ClientAuth::client_secret_basic(s("client_id")?, s("client_secret")?),
        ),
        "auth/client-credentials-jwt" => {
            let alg = Algorithm::from_name(ctx["signing_algorithm"].as_str().unwrap_or("ES256"))
                .ok_or("unknown signing_algorithm")?;
            let key = ClientAssertionKey::from_pkcs8_pem(alg, &s("private_key_pem")?)?;
            Grant::client_credentials(ClientAuth::private_key_jwt(s("client_id")?, key))
        }
        "auth/wif-jwt-bearer" => Grant::jwt_bearer(
            ClientAuth::none(s("client_id")?),
            Assertion::value(s("valid_jwt")?),
        ),
        "auth/enterprise-managed-authorization" => Grant::enterprise(
            ClientAuth::client_secret_basic(s("client_id")?, s("client_secret")?),
            EnterpriseIdp::new(
                s("idp_token_endpoint")?,
                ClientAuth::none(s("idp_client_id")?),
                Assertion::value(s("idp_id_token")?),
            ),
        ),
        _ => {
            let browser = FollowOnce(
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            );
            let flow = AuthorizationCode::new("http://127.0.0.1:3333/callback", browser)
                .client_name("mcp-resource-guard conformance client")
                .client_metadata_document("https://conformance-test.local/client-metadata.json");
            Grant::authorization_code(match scenario {
                "auth/pre-registration" => flow.pre_registered(ClientAuth::client_secret_basic(
                    s("client_id")?,
                    s("client_secret")?,
                )),
                _ => flow,
            })
        }
    })
}

/// One JSON-RPC request (a notification without `id`); the result, if any.
async fn rpc(
    client: &AuthorizedClient,
    url: &str,
    version: &str,
    id: Option<u64>,
    method: &str,
    mut params: Value,
) -> Result<Value, Box<dyn Error>> {
    let stateless = version >= "2026";
    if stateless {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-resource-guard", "version": "0.1.0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        });
    }
    let mut body = json!({"jsonrpc": "2.0", "method": method, "params": params});
    if let Some(id) = id {
        body["id"] = id.into();
    }
    let res = client
        .send(|http| {
            let mut req = http
                .post(url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body.to_string());
            if method != "initialize" {
                req = req.header("mcp-protocol-version", version);
            }
            if stateless {
                req = req.header("mcp-method", method);
                if let Some(name) = body["params"]["name"].as_str() {
                    req = req.header("mcp-name", name);
                }
            }
            req
        })
        .await?;
    let status = res.status();
    let text = res.text().await?;
    if id.is_none() {
        return Ok(Value::Null);
    }
    // A JSON body, or the first `data:` of an event stream.
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    let reply: Value = serde_json::from_str(json.trim())
        .map_err(|_| format!("{method}: HTTP {status}, not JSON-RPC"))?;
    match reply.get("result") {
        Some(r) => Ok(r.clone()),
        None => Err(format!("{method}: {}", reply["error"]).into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args()
        .next_back()
        .ok_or("usage: conformance_client <server URL>")?;
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let ctx: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
        .unwrap_or_else(|_| "2025-11-25".to_owned());
    let mut builder = AuthorizedClient::builder(grant(&scenario, &ctx)?)
        .trusted_issuers(trust_any_loopback_issuer());
    if scenario.starts_with("auth/dpop") {
        builder = builder.dpop(DpopKey::generate()?);
    }
    let client = builder.build()?;
    if version.as_str() < "2026" {
        let init = json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "mcp-resource-guard", "version": "0.1.0"},
        });
        rpc(&client, &url, &version, Some(1), "initialize", init).await?;
        rpc(
            &client,
            &url,
            &version,
            None,
            "notifications/initialized",
            json!({}),
        )
        .await?;
    }
    let tools = rpc(&client, &url, &version, Some(2), "tools/list", json!({})).await?;
    let name = tools["tools"][0]["name"]
        .as_str()
        .unwrap_or("test-tool")
        .to_owned();
    let call = json!({"name": name, "arguments": {}});
    let result = rpc(&client, &url, &version, Some(3), "tools/call", call).await?;
    println!("{result}");
    Ok(())
}
