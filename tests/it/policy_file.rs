//! Policy files (feature `config`): `McpPolicy`, `Rule`, `ScopeHierarchy`
//! and `PolicyFile` read with serde, as `mcp-guard-proxy` reads them.

use mcp_resource_guard::ScopeHierarchy;
use mcp_resource_guard::mcp::{McpPolicy, PolicyFile, Rule};

#[test]
fn rules_are_allow_deny_or_scopes_and_an_empty_list_allows() {
    #[derive(serde::Deserialize)]
    struct R {
        r: Rule,
    }
    let rule = |v: &str| toml::from_str::<R>(&format!("r = {v}")).map(|r| r.r);
    assert_eq!(rule("\"allow\"").unwrap(), Rule::Allow);
    assert_eq!(rule("\"deny\"").unwrap(), Rule::Deny);
    assert_eq!(rule("[]").unwrap(), Rule::Allow);
    assert_eq!(
        rule("[\"a:b\", \"c\"]").unwrap(),
        Rule::require(["a:b", "c"])
    );
    for bad in [
        "\"maybe\"",
        "[\"a b\"]",
        "[\"offline_access\"]",
        "3",
        "[\"\"]",
    ] {
        assert!(rule(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_policy_file_keeps_the_files_order_and_checks_every_scope() {
    let f: PolicyFile = toml::from_str(
        r#"
        required = ["r"]
        scopes_supported = ["r", "w", "admin"]
        default = "deny"
        [implies]
        admin = ["w"]
        "w" = ["r"]
        [tools]
        "x_*" = ["admin"]
        "*" = ["r"]
        "#,
    )
    .unwrap();
    assert_eq!(f.required_scopes(), ["r"]);
    assert_eq!(f.scopes_supported(), ["r", "w", "admin"]);
    assert_eq!(
        f.scope_hierarchy(),
        &ScopeHierarchy::new()
            .implies("admin", ["w"])
            .implies("w", ["r"])
    );
    let _ = f.policy();
    // Each of these is refused, at its line.
    let head = "scopes_supported = [\"r\"]\ndefault = \"deny\"\n";
    for (text, line) in [
        (format!("{head}[tools]\nx = [\"w\"]\n"), 4),
        (format!("{head}[implies]\nw = [\"r\"]\n"), 4),
        (format!("{head}[implies]\nr = [\"w\"]\n"), 4),
        (format!("{head}[tool]\nx = [\"r\"]\n"), 3),
        (format!("{head}stream = [\"q\"]\n"), 3),
        (format!("{head}[resources]\n\"\" = []\n"), 4),
    ] {
        let e = toml::from_str::<PolicyFile>(&text).unwrap_err().to_string();
        assert!(e.contains(&format!("line {line},")), "{line}: {e}");
    }
    // A scope named before scopes_supported is checked too.
    let e = toml::from_str::<PolicyFile>(
        "required = [\"q\"]\nscopes_supported = [\"r\"]\ndefault = \"allow\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("required: \"q\" is not in scopes_supported"),
        "{e}"
    );
    // scopes_supported and default are required, and list something.
    for text in [
        "default = \"deny\"\n",
        "scopes_supported = [\"r\"]\n",
        "scopes_supported = []\ndefault = \"deny\"\n",
    ] {
        assert!(toml::from_str::<PolicyFile>(text).is_err(), "{text}");
    }
}

#[test]
fn an_mcp_policy_alone_takes_the_rules_only() {
    let p: Result<McpPolicy, _> = toml::from_str("default = \"deny\"\n[methods]\nping = []\n");
    assert!(p.is_ok());
    let e = toml::from_str::<McpPolicy>("default = \"deny\"\nscopes_supported = [\"a\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `scopes_supported`"), "{e}");
    assert!(
        toml::from_str::<McpPolicy>("[methods]\nping = []\n").is_err(),
        "default is required"
    );
    let h: ScopeHierarchy = toml::from_str("a = [\"b\"]\n").unwrap();
    assert_eq!(h, ScopeHierarchy::new().implies("a", ["b"]));
}

#[test]
fn the_files_order_decides_between_patterns() {
    use mcp_resource_guard::mcp::McpLayer;
    use mcp_resource_guard::testing::TestIssuer;
    // A file whose x_* comes before *, read into a layer: a todo:read
    // token may not call x_drop (the first pattern, x_*, needs admin).
    let f: PolicyFile = toml::from_str(
        "scopes_supported = [\"r\", \"admin\"]\ndefault = \"deny\"\n[tools]\n\"x_*\" = [\"admin\"]\n\"*\" = [\"r\"]\n",
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dev = TestIssuer::start().await.unwrap();
        let guard = f
            .configure(mcp_resource_guard::GuardLayer::builder(
                "https://mcp.example.com/mcp",
            ))
            .add_issuer(mcp_resource_guard::Issuer::new(dev.issuer()).jwks_uri(dev.jwks_uri()))
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/mcp", axum::routing::post(|| async { "ran" }))
            .layer(McpLayer::new(&guard, f.policy().clone()))
            .layer(guard);
        let token = dev.token("alice", "https://mcp.example.com/mcp", "r");
        let call = |name: &str| {
            let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": name, "arguments": {},
                  "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
            http::Request::post("/mcp")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", name)
                .body(axum::body::Body::from(body.to_string()))
                .unwrap()
        };
        use tower::ServiceExt;
        assert_eq!(
            app.clone().oneshot(call("list")).await.unwrap().status(),
            200
        );
        assert_eq!(
            app.clone().oneshot(call("x_drop")).await.unwrap().status(),
            403
        );
    });
}
