//! The configuration file: the documented one as it is, several routes,
//! the environment over the file, and errors that name the line.

use std::time::Duration;

use mcp_guard_proxy::config::{self, Config};
use mcp_resource_guard::TypPolicy;
use mcp_resource_guard::dpop::DpopMode;
use mcp_resource_guard::mcp::ListFilter;

use crate::common::{POLICY, env, temp_dir};

const EXAMPLE: &str = include_str!("../../examples/mcp-guard-proxy.toml");

/// The documented configuration, from a folder that also holds the
/// policy file it names.
fn example_path() -> String {
    let dir = temp_dir();
    std::fs::write(dir.join("todo-policy.toml"), POLICY).unwrap();
    let path = dir.join("mcp-guard-proxy.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    path.display().to_string()
}

fn load(path: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
    config::load(Some(path), &env(vars)).map_err(|e| e.to_string())
}

#[test]
fn the_documented_configuration_is_accepted_as_it_is() {
    let c = load(&example_path(), &[]).unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(c.issuers, ["https://auth.example.com"]);
    assert_eq!(c.typ_policy, TypPolicy::AccessTokenOnly);
    assert_eq!(c.routes.len(), 2);
    let (todo, notes) = (&c.routes[0], &c.routes[1]);
    assert_eq!(todo.resource, "https://mcp.example.com/todo/mcp");
    assert_eq!(todo.upstream, "http://127.0.0.1:8000/mcp");
    assert_eq!(todo.policy.required_scopes(), ["todo:read"]);
    assert_eq!(todo.list_filter, ListFilter::HideDenied);
    assert_eq!(todo.response_timeout, Duration::from_secs(30));
    assert_eq!(
        notes.policy.scopes_supported(),
        ["notes:read", "notes:write"]
    );
    assert_eq!(c.limits.max_connections.0, 1024);
    assert_eq!(c.limits.max_body_bytes.0, 4 * 1024 * 1024);
    assert_eq!(c.ops.as_ref().unwrap().bind.to_string(), "127.0.0.1:9090");
    assert!(c.ops.as_ref().unwrap().revoke_token.is_none());
    assert_eq!(c.dpop, DpopMode::Disabled);
}

#[test]
fn the_environment_overrides_the_file() {
    let dir = temp_dir();
    let secret = dir.join("revoke");
    std::fs::write(&secret, "from-the-file-0123456789\n").unwrap();
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        POLICY.replace("required = [\"todo:read\"]", "required = []"),
    )
    .unwrap();
    let path = dir.join("c.toml");
    let text = format!(
        "bind = \"127.0.0.1:1\"\nissuers = [\"https://a.example.com\"]\n[[routes]]\nupstream = \"http://127.0.0.1:2/mcp\"\npolicy_file = \"{}\"\n[ops]\nbind = \"127.0.0.1:4\"\nrevoke_token_file = \"{}\"\n",
        policy.display(),
        secret.display()
    );
    std::fs::write(&path, text).unwrap();
    let path = path.display().to_string();
    let c = load(&path, &[]).unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:1");
    assert_eq!(
        c.ops.as_ref().unwrap().revoke_token.as_ref().unwrap().0,
        "from-the-file-0123456789"
    );
    assert!(c.routes[0].policy.required_scopes().is_empty());
    let c = load(
        &path,
        &[
            ("MCP_BIND", "127.0.0.1:5"),
            ("MCP_ISSUER", "https://b.example.com, https://c.example.com"),
            ("MCP_TYP_POLICY", "allow-jwt"),
            ("MCP_UPSTREAM", "http://127.0.0.1:6/mcp"),
            ("MCP_RESOURCE", "https://mcp.example.com/mcp"),
            ("MCP_POLICY", &write_todo_policy()),
            ("MCP_METRICS_BIND", "127.0.0.1:7"),
            ("MCP_REVOKE_TOKEN", "from-the-environment-0123"),
        ],
    )
    .unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:5");
    assert_eq!(
        c.issuers,
        ["https://b.example.com", "https://c.example.com"]
    );
    assert_eq!(c.typ_policy, TypPolicy::AllowJwt);
    assert_eq!(c.routes[0].upstream, "http://127.0.0.1:6/mcp");
    assert_eq!(c.routes[0].resource, "https://mcp.example.com/mcp");
    assert_eq!(c.routes[0].policy.required_scopes(), ["todo:read"]);
    let ops = c.ops.unwrap();
    assert_eq!(ops.bind.to_string(), "127.0.0.1:7");
    assert_eq!(ops.revoke_token.unwrap().0, "from-the-environment-0123");
}

fn write_todo_policy() -> String {
    crate::common::write_policy(POLICY)
}

#[test]
fn without_a_file_the_environment_is_the_configuration() {
    let c = config::load(
        None,
        &env(&[
            ("MCP_UPSTREAM", "http://127.0.0.1:8000/mcp"),
            ("MCP_ISSUER", "https://auth.example.com"),
            ("MCP_POLICY", &write_todo_policy()),
        ]),
    )
    .unwrap();
    assert_eq!(c.routes[0].resource, "http://127.0.0.1:3000/mcp");
    assert_eq!(c.bind.to_string(), "127.0.0.1:3000");
    assert!(c.ops.is_none());
    // What is missing, and how to set it.
    let e = config::load(None, &env(&[])).unwrap_err().to_string();
    assert!(e.contains("MCP_ISSUER"), "{e}");
    let e = config::load(None, &env(&[("MCP_ISSUER", "https://a.example.com")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("MCP_UPSTREAM"), "{e}");
    let e = config::load(
        None,
        &env(&[
            ("MCP_ISSUER", "https://a.example.com"),
            ("MCP_UPSTREAM", "http://127.0.0.1:1/mcp"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("MCP_POLICY"), "{e}");
}

#[test]
fn errors_name_the_file_and_the_line() {
    let base = "issuers = [\"https://a.example.com\"]\n[[routes]]\nupstream = \"http://127.0.0.1:2/mcp\"\n[routes.policy]\nscopes_supported = [\"a\"]\ndefault = \"deny\"\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "an unknown key",
            "issuers = [\"https://a.example.com\"]\nbnid = \"x\"\n",
            "line 2",
        ),
        (
            "a bad limit",
            &format!("{base}[limits]\nmax_in_flight = 0\n"),
            "line 8",
        ),
        (
            "a bad address",
            &format!("bind = \"localhost\"\n{base}"),
            "line 1",
        ),
        (
            "an identity header that is a credential",
            &format!("{base}[routes.identity_headers]\nsubject = \"authorization\"\n"),
            "line 8",
        ),
        (
            "an identity header with an underscore",
            &format!("{base}[routes.identity_headers]\nsubject = \"x_mcp_subject\"\n"),
            "line 8",
        ),
        (
            "an unknown list filter",
            &base.replace("[routes.policy]", "list_filter = \"some\"\n[routes.policy]"),
            "line 4",
        ),
        (
            "a rule naming an unsupported scope",
            &format!("{base}[routes.policy.tools]\nx = [\"b\"]\n"),
            "line 8",
        ),
        (
            "an unknown policy key",
            &format!("{base}[routes.policy.tool]\nx = [\"a\"]\n"),
            "line 7",
        ),
        (
            "policy and policy_file",
            &base.replace(
                "[routes.policy]",
                "policy_file = \"p.toml\"\n[routes.policy]",
            ),
            "line 4",
        ),
        (
            "a bad drain time",
            &format!("{base}[limits]\nshutdown_drain_ms = -1\n"),
            "line 8",
        ),
    ];
    for (what, text, line) in cases {
        let e = config::parse("c.toml", text, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml"), "{what}: {e}");
        assert!(
            e.contains(&format!("{line},")) || e.contains(&format!("{line}:")),
            "{what}: {line} not in {e}"
        );
    }
}

#[test]
fn settings_that_contradict_each_other_are_refused_with_what_to_fix() {
    let policy = write_todo_policy();
    let two = format!(
        "issuers = [\"https://a.example.com\"]\n[[routes]]\nresource = \"https://m.example.com/a/mcp\"\nupstream = \"http://127.0.0.1:2/mcp\"\npolicy_file = \"{policy}\"\n[[routes]]\nresource = \"https://m.example.com/a/mcp\"\nupstream = \"http://127.0.0.1:3/mcp\"\npolicy_file = \"{policy}\"\n"
    );
    let e = config::parse("c.toml", &two, &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("two routes at the path"), "{e}");
    let distinct = two.replacen(
        "/a/mcp\"\nupstream = \"http://127.0.0.1:3",
        "/b/mcp\"\nupstream = \"http://127.0.0.1:3",
        1,
    );
    let distinct = distinct.replacen(
        "https://m.example.com/a/mcp\"\nupstream = \"http://127.0.0.1:3",
        "https://m.example.com/b/mcp\"\nupstream = \"http://127.0.0.1:3",
        1,
    );
    assert_eq!(
        config::parse("c.toml", &distinct, &env(&[]))
            .unwrap()
            .routes
            .len(),
        2
    );
    // The environment sets the only route, not one of two.
    let e = config::parse(
        "c.toml",
        &distinct,
        &env(&[("MCP_UPSTREAM", "http://127.0.0.1:9/mcp")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("MCP_UPSTREAM") && e.contains("only route"),
        "{e}"
    );
    let one = "issuers = [\"https://a.example.com\"]\n";
    let vars = [
        ("MCP_UPSTREAM", "http://127.0.0.1:9/mcp"),
        ("MCP_POLICY", policy.as_str()),
    ];
    // A revoke token: 16 visible characters at least, and an ops port.
    let e = config::parse(
        "c.toml",
        one,
        &env(&[
            vars[0],
            vars[1],
            ("MCP_METRICS_BIND", "127.0.0.1:9"),
            ("MCP_REVOKE_TOKEN", "short"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("at least 16"), "{e}");
    let e = config::parse(
        "c.toml",
        one,
        &env(&[
            vars[0],
            vars[1],
            ("MCP_REVOKE_TOKEN", "long-enough-0123456789"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("operations port"), "{e}");
    // Introspection needs its issuer among the trusted ones, and a secret.
    let e = config::parse(
        "c.toml",
        &format!(
            "{one}[introspection]\nissuer = \"https://evil.example.com\"\nclient_id = \"p\"\n"
        ),
        &env(&vars),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not one of issuers"), "{e}");
    let e = config::parse(
        "c.toml",
        &format!("{one}[introspection]\nclient_id = \"p\"\n"),
        &env(&vars),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("MCP_INTROSPECTION_SECRET"), "{e}");
    let c = config::parse(
        "c.toml",
        &format!("{one}[introspection]\nclient_id = \"p\"\n[dpop]\nmode = \"required\"\n"),
        &env(&[vars[0], vars[1], ("MCP_INTROSPECTION_SECRET", "s3cret")]),
    )
    .unwrap();
    let i = c.introspection.unwrap();
    assert_eq!(i.issuer, "https://a.example.com");
    assert_eq!(format!("{:?}", i.client_secret), "Secret(<redacted>)");
    assert_eq!(c.dpop, DpopMode::Required);
}

/// The fenced blocks of `lang` in `markdown`.
fn blocks<'a>(markdown: &'a str, lang: &str) -> Vec<&'a str> {
    let open = format!("```{lang}\n");
    markdown
        .split(&open)
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect()
}

#[test]
fn the_readmes_configurations_are_valid_as_written() {
    let readme = include_str!("../../README.md");
    let toml_blocks = blocks(readme, "toml");
    assert_eq!(
        toml_blocks.len(),
        2,
        "the minimal configuration and the policy file"
    );
    let c = config::parse("README minimal", toml_blocks[0], &env(&[])).unwrap();
    assert_eq!(c.routes[0].upstream, "http://127.0.0.1:8000/mcp");
    let p = mcp_guard_proxy::policy::parse("README policy", toml_blocks[1]).unwrap();
    assert_eq!(p.file.required_scopes(), ["todo:read"]);
}
