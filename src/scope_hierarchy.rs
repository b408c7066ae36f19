//! Scope hierarchies: "Servers MUST account for scope hierarchies, where a
//! broader scope implies narrower ones" (MCP `2026-07-28`, authorization).
//!
//! A [`ScopeHierarchy`] is declared once on the guard and applied wherever
//! a scope is checked: the guard's required scopes, every
//! [`RequireScopeLayer`](crate::RequireScopeLayer), every
//! [`McpPolicy`](crate::mcp::McpPolicy) rule. Challenges name the narrowest
//! scopes that satisfy an operation (`todo:write`, not `todo:write
//! todo:read`, when write implies read).

use std::collections::HashMap;

use crate::claims::Scopes;
use crate::config::{glob, is_scope_token};
use crate::error::ConfigError;

/// Which scopes imply which: a directed graph without cycles, plus optional
/// pattern scopes.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_resource_guard::{GuardLayer, Issuer, ScopeHierarchy};
///
/// let guard = GuardLayer::builder("https://mcp.example.com/mcp")
///     .add_issuer(Issuer::new("https://auth.example.com"))
///     .scopes_supported(["todo:read", "todo:write", "todo:delete", "todo:admin", "mcp:exec:*"])
///     .scope_hierarchy(
///         ScopeHierarchy::new()
///             .implies("todo:admin", ["todo:write", "todo:delete"])
///             .implies("todo:write", ["todo:read"])
///             // A token granted `mcp:exec:*` holds every `mcp:exec:…` scope.
///             .pattern("mcp:exec:*"),
///     )
///     .build()?;
/// # let _ = guard; Ok(()) }
/// ```
#[must_use]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeHierarchy {
    implies: Vec<(String, Vec<String>)>,
    patterns: Vec<String>,
}

impl ScopeHierarchy {
    /// No implications: a scope is granted only by itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token granted `broader` also holds every scope of `narrower` (and,
    /// transitively, what those imply). May be called again for the same
    /// `broader`: the lists add up.
    pub fn implies<I, S>(mut self, broader: impl Into<String>, narrower: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.implies.push((
            broader.into(),
            narrower.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// A pattern scope (with `*`, matching any run of characters): a token
    /// granted exactly this pattern holds every scope it matches
    /// (`mcp:exec:*` holds `mcp:exec:functions.delete_todo`). Only patterns
    /// declared here act as patterns; a granted scope with a `*` that is not
    /// declared is an ordinary scope.
    pub fn pattern(mut self, pattern: impl Into<String>) -> Self {
        self.patterns.push(pattern.into());
        self
    }

    /// Checks the graph against the scopes the resource supports and
    /// computes each scope's transitive closure.
    pub(crate) fn compile(&self, supported: &[String]) -> Result<CompiledHierarchy, ConfigError> {
        let known = |scope: &str, setting: &'static str| {
            if !is_scope_token(scope) {
                return Err(ConfigError::InvalidScope {
                    scope: scope.to_owned(),
                });
            }
            if !supported.iter().any(|s| s == scope) {
                return Err(ConfigError::UnknownScope {
                    scope: scope.to_owned(),
                    setting,
                });
            }
            Ok(())
        };
        let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
        for (broader, narrower) in &self.implies {
            known(broader, "ScopeHierarchy::implies")?;
            if narrower.is_empty() {
                return Err(ConfigError::EmptyScopes {
                    setting: "ScopeHierarchy::implies",
                });
            }
            let out = edges.entry(broader.as_str()).or_default();
            for n in narrower {
                known(n, "ScopeHierarchy::implies")?;
                if !out.contains(&n.as_str()) {
                    out.push(n);
                }
            }
        }
        for p in &self.patterns {
            known(p, "ScopeHierarchy::pattern")?;
            if !p.contains('*') {
                return Err(ConfigError::InvalidScope { scope: p.clone() });
            }
        }
        let mut closure = HashMap::new();
        // In declaration order, so a cycle is reported the same way each time.
        for start in self.implies.iter().map(|(b, _)| b.as_str()) {
            if closure.contains_key(start) {
                continue;
            }
            let mut seen: Vec<String> = Vec::new();
            let mut path = vec![start];
            reach(start, &edges, &mut path, &mut seen)?;
            closure.insert(start.to_owned(), seen);
        }
        Ok(CompiledHierarchy {
            closure,
            patterns: self.patterns.clone(),
        })
    }
}

/// Depth-first walk from `from`, collecting every scope reached; a scope
/// met again on the current path is a cycle.
fn reach<'a>(
    from: &'a str,
    edges: &HashMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
    seen: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for &next in edges.get(from).map(Vec::as_slice).unwrap_or_default() {
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<&str> = path[i..].to_vec();
            cycle.push(next);
            return Err(ConfigError::ScopeCycle {
                cycle: cycle.join(" => "),
            });
        }
        if !seen.iter().any(|s| s == next) {
            seen.push(next.to_owned());
        }
        path.push(next);
        reach(next, edges, path, seen)?;
        path.pop();
    }
    Ok(())
}

/// A checked hierarchy: every scope's implied scopes, transitively.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledHierarchy {
    closure: HashMap<String, Vec<String>>,
    patterns: Vec<String>,
}

impl CompiledHierarchy {
    /// `true` when there is nothing to apply (the common case: exact match only).
    pub(crate) fn is_empty(&self) -> bool {
        self.closure.is_empty() && self.patterns.is_empty()
    }

    /// `true` when holding `held` gives `scope`: itself, implied, or matched
    /// by a declared pattern that `held` is or implies.
    fn gives(&self, held: &str, scope: &str) -> bool {
        if held == scope {
            return true;
        }
        let by_pattern = |p: &str| self.patterns.iter().any(|x| x == p) && glob(p, scope);
        by_pattern(held)
            || self
                .closure
                .get(held)
                .is_some_and(|implied| implied.iter().any(|i| i == scope || by_pattern(i)))
    }

    /// `true` when the granted scopes give `scope`.
    pub(crate) fn grants(&self, granted: &Scopes, scope: &str) -> bool {
        if granted.contains(scope) {
            return true;
        }
        !self.is_empty() && granted.iter().any(|g| self.gives(g, scope))
    }

    /// The narrowest scopes that still give all of `scopes`: a scope another
    /// one in the list implies is left out. Order kept, repeats dropped.
    pub(crate) fn narrowest<'a>(&self, scopes: &[&'a str]) -> Vec<&'a str> {
        let mut out: Vec<&'a str> = Vec::new();
        for (i, s) in scopes.iter().enumerate() {
            let covered = scopes
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other != s && self.gives(other, s));
            if !covered && !out.contains(s) {
                out.push(s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported() -> Vec<String> {
        [
            "todo:read",
            "todo:write",
            "todo:delete",
            "todo:admin",
            "mcp:exec:*",
            "x",
        ]
        .map(String::from)
        .to_vec()
    }

    fn todo() -> CompiledHierarchy {
        ScopeHierarchy::new()
            .implies("todo:admin", ["todo:write", "todo:delete"])
            .implies("todo:write", ["todo:read"])
            .implies("todo:admin", ["mcp:exec:*"])
            .pattern("mcp:exec:*")
            .compile(&supported())
            .unwrap()
    }

    #[test]
    fn broader_scopes_grant_narrower_ones() {
        let h = todo();
        let s = |v: &str| Scopes::from_space_separated(v);
        assert!(h.grants(&s("todo:admin"), "todo:read"));
        assert!(h.grants(&s("todo:admin"), "todo:delete"));
        assert!(h.grants(&s("todo:write"), "todo:read"));
        assert!(!h.grants(&s("todo:write"), "todo:delete"));
        assert!(!h.grants(&s("todo:read"), "todo:write"));
        assert!(h.grants(&s("mcp:exec:*"), "mcp:exec:functions.delete_todo"));
        assert!(h.grants(&s("todo:admin"), "mcp:exec:functions.delete_todo"));
        assert!(!h.grants(&s("mcp:exec:*"), "mcp:other"));
        // An undeclared `*` in a granted scope is just a name.
        let plain = ScopeHierarchy::new().compile(&supported()).unwrap();
        assert!(!plain.grants(&s("mcp:exec:*"), "mcp:exec:x"));
    }

    #[test]
    fn challenges_name_the_narrowest_scopes() {
        let h = todo();
        assert_eq!(h.narrowest(&["todo:read", "todo:write"]), ["todo:write"]);
        assert_eq!(
            h.narrowest(&["todo:read", "todo:delete", "todo:write"]),
            ["todo:delete", "todo:write"]
        );
        assert_eq!(h.narrowest(&["todo:read", "todo:read"]), ["todo:read"]);
        assert_eq!(
            h.narrowest(&["x", "todo:admin", "todo:read"]),
            ["x", "todo:admin"]
        );
    }

    #[test]
    fn cycles_and_unknown_scopes_are_config_errors() {
        let cyc = ScopeHierarchy::new()
            .implies("todo:admin", ["todo:write"])
            .implies("todo:write", ["todo:read"])
            .implies("todo:read", ["todo:admin"])
            .compile(&supported())
            .unwrap_err();
        assert!(
            matches!(&cyc, ConfigError::ScopeCycle { cycle } if cycle.contains("todo:admin => todo:write => todo:read => todo:admin")),
            "{cyc}"
        );
        let self_loop = ScopeHierarchy::new()
            .implies("x", ["x"])
            .compile(&supported());
        assert!(matches!(self_loop, Err(ConfigError::ScopeCycle { .. })));
        let unknown = ScopeHierarchy::new()
            .implies("todo:admin", ["todo:wrtie"])
            .compile(&supported())
            .unwrap_err();
        assert_eq!(
            unknown,
            ConfigError::UnknownScope {
                scope: "todo:wrtie".into(),
                setting: "ScopeHierarchy::implies"
            }
        );
        assert!(
            ScopeHierarchy::new()
                .pattern("mcp:*")
                .compile(&supported())
                .is_err()
        );
        assert!(
            ScopeHierarchy::new()
                .pattern("x")
                .compile(&supported())
                .is_err()
        );
        assert!(
            ScopeHierarchy::new()
                .implies("x", Vec::<String>::new())
                .compile(&supported())
                .is_err()
        );
    }
}
