//! A conformance kit users run on their own server (feature `testing`): the
//! resource-server checks of the MCP authorization specification, against a
//! live URL, with a [`TestIssuer`] the server trusts.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mcp_resource_guard::testing::TestIssuer;
//! use mcp_resource_guard::testing::conformance::{Call, Conformance};
//!
//! let issuer = TestIssuer::start().await?;
//! // ... start your server trusting `issuer.issuer()` at http://127.0.0.1:3000/mcp ...
//! let report = Conformance::new("http://127.0.0.1:3000/mcp", &issuer)
//!     .granted("todo:read")
//!     .needs_more(Call::mcp_tool("add_todo"), "todo:write")
//!     .implied("todo:admin", Call::mcp_tool("add_todo"))
//!     .run()
//!     .await;
//! assert!(report.is_ok(), "{report}");
//! # Ok(()) }
//! ```
//!
//! The checks ([`Report`] names each):
//! `prm_path_inserted`, `prm_root` (RFC 9728 metadata on both well-known
//! URLs, `resource` equal to the URL, the issuer listed); `no_token` (401,
//! no `error`, `resource_metadata`); `valid_token` (accepted);
//! `wrong_audience`, `missing_audience`, `expired`, `untrusted_key`,
//! `alg_none`, `alg_hs256` (401 `invalid_token`); `insufficient_scope` (403
//! with `scope` and `resource_metadata`); `header_mismatch` (MCP calls:
//! `-32020`); `scope_hierarchy` (a broader scope passes).

use std::fmt;

use serde_json::{Value, json};

use super::issuer::TestIssuer;
use super::key::TestKey;
use super::{sign_hs256, unsigned};
use crate::config::Algorithm;

/// A request the kit sends to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `GET` of this URL.
    Get(String),
    /// `POST` of this URL, with an empty body.
    Post(String),
    /// A stateless (`2026-07-28`) MCP `tools/list` POST to the URL.
    McpList,
    /// A stateless (`2026-07-28`) MCP `tools/call` of this tool, no arguments.
    McpTool(String),
}

impl Call {
    /// An MCP `tools/call` of `tool`.
    pub fn mcp_tool(tool: impl Into<String>) -> Self {
        Self::McpTool(tool.into())
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check's name, e.g. `wrong_audience`.
    pub name: &'static str,
    /// `true` when the server behaved as the specification requires.
    pub passed: bool,
    /// What was expected and what came back.
    pub detail: String,
}

/// Every check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The checks, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// `true` when every check passed.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} {:<20} {}", c.name, c.detail)?;
        }
        Ok(())
    }
}

/// The checks to run against one server. See the [module docs](self).
#[derive(Debug)]
pub struct Conformance<'a> {
    url: String,
    issuer: &'a TestIssuer,
    granted: String,
    probe: Call,
    insufficient: Option<(Call, String)>,
    implied: Option<(String, Call)>,
}

/// The status and the headers and body that matter.
struct Answer {
    status: u16,
    www: String,
    body: String,
}

impl<'a> Conformance<'a> {
    /// Checks the resource at `url` (its canonical URL: the MCP endpoint, or
    /// the base URL of a plain API), whose server trusts `issuer`. Probes
    /// with [`Call::McpList`] and a token granted no scope, until told
    /// otherwise.
    pub fn new(url: impl Into<String>, issuer: &'a TestIssuer) -> Self {
        Self {
            url: url.into(),
            issuer,
            granted: String::new(),
            probe: Call::McpList,
            insufficient: None,
            implied: None,
        }
    }

    /// The scopes (space-separated) of the valid token: enough for the probe.
    pub fn granted(mut self, scopes: impl Into<String>) -> Self {
        self.granted = scopes.into();
        self
    }

    /// The request every token check sends. Defaults to [`Call::McpList`].
    pub fn probe(mut self, call: Call) -> Self {
        self.probe = call;
        self
    }

    /// A call the valid token is not enough for, which needs `scope`: the
    /// server must answer `403 insufficient_scope` naming it.
    pub fn needs_more(mut self, call: Call, scope: impl Into<String>) -> Self {
        self.insufficient = Some((call, scope.into()));
        self
    }

    /// A token granted only `broader` must pass `call` (a scope hierarchy).
    pub fn implied(mut self, broader: impl Into<String>, call: Call) -> Self {
        self.implied = Some((broader.into(), call));
        self
    }

    fn claims(&self, scope: &str) -> Value {
        json!({"sub": "conformance", "client_id": "conformance", "aud": self.url, "scope": scope})
    }

    async fn send(
        &self,
        call: &Call,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let client = reqwest::Client::new();
        let mut req = match call {
            Call::Get(url) => client.get(url),
            Call::Post(url) => client.post(url),
            Call::McpList | Call::McpTool(_) => {
                let (method, params, name) = match call {
                    Call::McpTool(t) => (
                        "tools/call",
                        json!({"name": t, "arguments": {}}),
                        Some(t.as_str()),
                    ),
                    _ => ("tools/list", json!({}), None),
                };
                let mut params = params;
                params["_meta"] = json!({
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                });
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                let mut r = client
                    .post(&self.url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .body(body.to_string());
                if !headers.iter().any(|(k, _)| *k == "mcp-method") {
                    r = r.header("mcp-method", method);
                }
                if let Some(n) = name.filter(|_| !headers.iter().any(|(k, _)| *k == "mcp-name")) {
                    r = r.header("mcp-name", n);
                }
                r
            }
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = res.status().as_u16();
        let www = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = res.text().await.unwrap_or_default();
        Ok(Answer { status, www, body })
    }

    /// Runs every check. Never panics: a check that cannot run fails, with why.
    pub async fn run(&self) -> Report {
        let mut checks = Vec::new();
        self.metadata(&mut checks).await;
        let probe = &self.probe;
        let push = |checks: &mut Vec<Check>, name, passed, detail: String| {
            checks.push(Check {
                name,
                passed,
                detail,
            });
        };
        match self.send(probe, None, &[]).await {
            Ok(a) => {
                let ok = a.status == 401
                    && a.www.starts_with("Bearer ")
                    && !a.www.contains("error=")
                    && a.www.contains("resource_metadata=\"");
                push(
                    &mut checks,
                    "no_token",
                    ok,
                    format!(
                        "want 401, Bearer with resource_metadata and no error; got {} {:?}",
                        a.status, a.www
                    ),
                );
            }
            Err(e) => push(&mut checks, "no_token", false, e),
        }
        let valid = self.issuer.mint(&self.claims(&self.granted));
        match self.send(probe, Some(&valid), &[]).await {
            Ok(a) => push(
                &mut checks,
                "valid_token",
                (200..300).contains(&a.status),
                format!("want 2xx; got {} {}", a.status, short(&a.body)),
            ),
            Err(e) => push(&mut checks, "valid_token", false, e),
        }
        for (name, token) in self.bad_tokens() {
            match self.send(probe, Some(&token), &[]).await {
                Ok(a) => {
                    let ok = a.status == 401 && a.www.contains("error=\"invalid_token\"");
                    push(
                        &mut checks,
                        name,
                        ok,
                        format!("want 401 invalid_token; got {} {:?}", a.status, a.www),
                    );
                }
                Err(e) => push(&mut checks, name, false, e),
            }
        }
        if let Some((call, scope)) = &self.insufficient {
            match self.send(call, Some(&valid), &[]).await {
                Ok(a) => {
                    let ok = a.status == 403
                        && a.www.contains("error=\"insufficient_scope\"")
                        && a.www.contains("resource_metadata=\"")
                        && scope_param(&a.www).is_some_and(|s| s.split(' ').any(|x| x == scope));
                    push(
                        &mut checks,
                        "insufficient_scope",
                        ok,
                        format!(
                            "want 403 insufficient_scope naming {scope}; got {} {:?}",
                            a.status, a.www
                        ),
                    );
                }
                Err(e) => push(&mut checks, "insufficient_scope", false, e),
            }
        }
        if let Call::McpTool(_) | Call::McpList = probe {
            let wrong = [("mcp-method", "prompts/list")];
            match self.send(probe, Some(&valid), &wrong).await {
                Ok(a) => {
                    let code = serde_json::from_str::<Value>(&a.body)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_i64());
                    push(
                        &mut checks,
                        "header_mismatch",
                        a.status == 400 && code == Some(-32020),
                        format!(
                            "want 400 with JSON-RPC -32020; got {} {}",
                            a.status,
                            short(&a.body)
                        ),
                    );
                }
                Err(e) => push(&mut checks, "header_mismatch", false, e),
            }
        }
        if let Some((broader, call)) = &self.implied {
            let t = self.issuer.mint(&self.claims(broader));
            match self.send(call, Some(&t), &[]).await {
                Ok(a) => push(
                    &mut checks,
                    "scope_hierarchy",
                    (200..300).contains(&a.status),
                    format!("want 2xx with only {broader}; got {} {:?}", a.status, a.www),
                ),
                Err(e) => push(&mut checks, "scope_hierarchy", false, e),
            }
        }
        Report { checks }
    }

    /// Tokens a resource server must refuse with `401 invalid_token`.
    fn bad_tokens(&self) -> Vec<(&'static str, String)> {
        let good = self.claims(&self.granted);
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        let mut no_aud = good.clone();
        if let Some(o) = no_aud.as_object_mut() {
            o.remove("aud");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let full = |c: &Value| {
            let mut c = c.clone();
            c["iss"] = json!(self.issuer.issuer());
            c["iat"] = json!(now);
            if c.get("exp").is_none() {
                c["exp"] = json!(now + 300);
            }
            c
        };
        let mut out = vec![
            (
                "wrong_audience",
                self.issuer.mint(&with(
                    "aud",
                    json!("https://another-resource.example.com/mcp"),
                )),
            ),
            ("missing_audience", self.issuer.mint(&no_aud)),
            (
                "expired",
                self.issuer
                    .mint(&with("exp", json!(now.saturating_sub(3600)))),
            ),
            (
                "alg_none",
                unsigned(&json!({"alg": "none", "typ": "at+jwt"}), &full(&good)),
            ),
        ];
        if let Ok(stranger) = TestKey::generate(Algorithm::ES256) {
            out.push((
                "untrusted_key",
                stranger
                    .with_kid("conformance-untrusted")
                    .sign(&full(&good)),
            ));
        }
        let jwks = self.issuer.jwks();
        let kid = jwks["keys"][0]["kid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let secret = serde_json::to_vec(&jwks["keys"][0]).unwrap_or_default();
        out.push((
            "alg_hs256",
            sign_hs256(
                &secret,
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                &full(&good),
            ),
        ));
        out
    }

    /// RFC 9728 metadata on the path-inserted and the root well-known URL.
    async fn metadata(&self, checks: &mut Vec<Check>) {
        let Ok(url) = url::Url::parse(&self.url) else {
            checks.push(Check {
                name: "prm_path_inserted",
                passed: false,
                detail: format!("{:?} is not a URL", self.url),
            });
            return;
        };
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        let canonical = crate::guard::resource::ResourceUrl::parse_inner(&self.url, true)
            .map(|r| r.as_str().to_owned())
            .unwrap_or_else(|_| self.url.clone());
        for (name, doc_url) in [
            (
                "prm_path_inserted",
                format!("{origin}/.well-known/oauth-protected-resource{path}"),
            ),
            (
                "prm_root",
                format!("{origin}/.well-known/oauth-protected-resource"),
            ),
        ] {
            let got = match reqwest::get(&doc_url).await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let ok = status == 200
                        && doc["resource"] == json!(canonical)
                        && doc["authorization_servers"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|i| i == self.issuer.issuer()));
                    (
                        ok,
                        format!(
                            "want 200, resource {canonical}, the issuer listed; got {status} {}",
                            short(&doc.to_string())
                        ),
                    )
                }
                Err(e) => (false, format!("GET {doc_url} failed: {e}")),
            };
            checks.push(Check {
                name,
                passed: got.0,
                detail: got.1,
            });
        }
    }
}

/// The `scope="…"` parameter of a challenge.
fn scope_param(www: &str) -> Option<&str> {
    let start = www.find("scope=\"")? + 7;
    let end = www[start..].find('"')? + start;
    Some(&www[start..end])
}

fn short(s: &str) -> String {
    s.chars().take(160).collect()
}
