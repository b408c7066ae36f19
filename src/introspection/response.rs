//! Judging an introspection response (RFC 7662 §2.2): `active`, `iss`,
//! `aud`, `exp`/`nbf`, `cnf`, `token_type`; then the same [`AuthContext`]
//! the JWT path builds.

use serde_json::{Map, Value};

use crate::claims::AuthContext;
use crate::config::ScopeClaim;
use crate::error::{AuthError, AuthErrorKind};

/// What the authorization server said about a token.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Active, and every check passed.
    Active(AuthContext),
    /// Not active (or active but not for this resource, expired, …): the
    /// error says which; it is cached as a negative result.
    Refused(AuthError),
}

/// What the checks need to know.
pub(crate) struct Expect<'a> {
    pub(crate) issuer: &'a str,
    /// Put in `aud` when the response has none (the documented opt-in);
    /// `None`: a response without `aud` is refused.
    pub(crate) audience_if_missing: Option<&'a str>,
    pub(crate) scope_claim: &'a ScopeClaim,
    pub(crate) leeway: u64,
    pub(crate) now: u64,
    /// DPoP is accepted: a `cnf.jkt` binding is kept, not refused.
    pub(crate) dpop: bool,
}

fn garbage(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::IntrospectionUnavailable, detail)
}

fn refused(kind: AuthErrorKind, detail: &'static str) -> Verdict {
    Verdict::Refused(AuthError::new(kind, detail))
}

/// Judges a JSON response body. `Err` (503): not an introspection response
/// at all; the token was not judged.
pub(crate) fn judge_json(body: &[u8], expect: &Expect<'_>) -> Result<Verdict, AuthError> {
    let map: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| garbage("the introspection response is not a JSON object"))?;
    judge(map, expect)
}

/// Judges a parsed response (a JSON body, or an RFC 9701 JWT's
/// `token_introspection` member).
pub(crate) fn judge(
    mut map: Map<String, Value>,
    expect: &Expect<'_>,
) -> Result<Verdict, AuthError> {
    match map.remove("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            return Ok(refused(
                AuthErrorKind::InvalidToken,
                "the authorization server reports the token as not active",
            ));
        }
        _ => {
            return Err(garbage(
                "the introspection response has no boolean `active` member",
            ));
        }
    }
    match map.get("iss") {
        None => {
            // The server asked is the issuer; the guard checks `iss`.
            map.insert("iss".to_owned(), expect.issuer.into());
        }
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(_) => {
            return Ok(refused(
                AuthErrorKind::UntrustedIssuer,
                "the introspection response names another issuer",
            ));
        }
    }
    if matches!(map.get("aud"), None | Some(Value::Null)) {
        let Some(aud) = expect.audience_if_missing else {
            return Ok(refused(
                AuthErrorKind::WrongAudience,
                "the introspection response has no aud (allow it with dangerous::accept_missing_audience)",
            ));
        };
        map.insert("aud".to_owned(), aud.into());
    }
    let mut binding = None;
    if let Some(cnf) = map.get("cnf")
        && !(cnf.is_null() || cnf.as_object().is_some_and(Map::is_empty))
    {
        if !expect.dpop {
            return Ok(refused(
                AuthErrorKind::InvalidToken,
                "the token is sender-constrained (cnf): it is not a Bearer token",
            ));
        }
        match crate::verify::claims::dpop_binding(cnf) {
            Ok(jkt) => binding = Some(jkt),
            Err(detail) => return Ok(refused(AuthErrorKind::InvalidToken, detail)),
        }
    }
    if let Some(Value::String(t)) = map.get("token_type")
        && t.eq_ignore_ascii_case("DPoP")
        && binding.is_none()
    {
        return Ok(refused(
            AuthErrorKind::InvalidToken,
            "the token is a DPoP token: it is not a Bearer token",
        ));
    }
    let ctx = match AuthContext::from_claims(map, expect.scope_claim) {
        Ok(ctx) => ctx,
        Err(_) => {
            return Err(garbage(
                "the introspection response has a member of the wrong type",
            ));
        }
    };
    if ctx
        .expires_at_unix()
        .is_some_and(|exp| exp.saturating_add(expect.leeway) <= expect.now)
    {
        return Ok(refused(
            AuthErrorKind::Expired,
            "the introspection response's exp has passed",
        ));
    }
    if ctx
        .not_before_unix()
        .is_some_and(|nbf| nbf > expect.now.saturating_add(expect.leeway))
    {
        return Ok(refused(
            AuthErrorKind::NotYetValid,
            "the introspection response's nbf is in the future",
        ));
    }
    Ok(Verdict::Active(match binding {
        Some(jkt) => ctx.bound_to(jkt, None),
        None => ctx,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn expect(missing: Option<&'static str>) -> Expect<'static> {
        static SCOPE: std::sync::OnceLock<ScopeClaim> = std::sync::OnceLock::new();
        Expect {
            issuer: "https://as.example.com",
            audience_if_missing: missing,
            scope_claim: SCOPE.get_or_init(ScopeClaim::default),
            leeway: 60,
            now: NOW,
            dpop: false,
        }
    }

    fn run(v: Value, missing: Option<&'static str>) -> Result<Verdict, AuthError> {
        judge_json(v.to_string().as_bytes(), &expect(missing))
    }

    fn refused_kind(v: Value) -> AuthErrorKind {
        match run(v, None) {
            Ok(Verdict::Refused(e)) => e.kind(),
            other => panic!("not refused: {other:?}"),
        }
    }

    fn good() -> Value {
        json!({"active": true, "iss": "https://as.example.com", "aud": "https://mcp.example.com/mcp",
               "scope": "todo:read todo:write", "client_id": "agent", "sub": "alice",
               "exp": NOW + 600, "iat": NOW - 5, "token_type": "Bearer", "cnf": {}})
    }

    #[test]
    fn an_active_response_becomes_a_context() {
        let Ok(Verdict::Active(ctx)) = run(good(), None) else {
            panic!()
        };
        assert_eq!(ctx.issuer(), "https://as.example.com");
        assert_eq!(ctx.subject(), Some("alice"));
        assert_eq!(ctx.client_id(), Some("agent"));
        assert_eq!(ctx.audiences(), ["https://mcp.example.com/mcp"]);
        assert!(ctx.scopes().contains("todo:write"));
        assert_eq!(ctx.expires_at_unix(), Some(NOW + 600));
    }

    #[test]
    fn active_must_be_the_boolean_true() {
        let mut v = good();
        v["active"] = json!(false);
        assert_eq!(refused_kind(v), AuthErrorKind::InvalidToken);
        for bad in [json!("true"), json!(1), Value::Null] {
            let mut v = good();
            v["active"] = bad;
            let e = run(v, None).unwrap_err();
            assert_eq!(e.kind(), AuthErrorKind::IntrospectionUnavailable);
        }
        let mut v = good();
        v.as_object_mut().unwrap().remove("active");
        assert!(run(v, None).is_err());
        assert!(judge_json(b"<html>", &expect(None)).is_err());
        assert!(judge_json(b"[true]", &expect(None)).is_err());
    }

    #[test]
    fn another_issuer_is_refused_and_a_missing_one_is_the_server_asked() {
        let mut v = good();
        v["iss"] = json!("https://evil.example.com");
        assert_eq!(refused_kind(v), AuthErrorKind::UntrustedIssuer);
        let mut v = good();
        v.as_object_mut().unwrap().remove("iss");
        let Ok(Verdict::Active(ctx)) = run(v, None) else {
            panic!()
        };
        assert_eq!(ctx.issuer(), "https://as.example.com");
    }

    #[test]
    fn a_missing_audience_needs_the_opt_in() {
        let mut v = good();
        v.as_object_mut().unwrap().remove("aud");
        assert_eq!(refused_kind(v.clone()), AuthErrorKind::WrongAudience);
        let Ok(Verdict::Active(ctx)) = run(v, Some("https://mcp.example.com/mcp")) else {
            panic!()
        };
        assert_eq!(ctx.audiences(), ["https://mcp.example.com/mcp"]);
    }

    #[test]
    fn times_apply_with_leeway() {
        let mut v = good();
        v["exp"] = json!(NOW - 61);
        assert_eq!(refused_kind(v), AuthErrorKind::Expired);
        let mut v = good();
        v["exp"] = json!(NOW - 59);
        assert!(matches!(run(v, None), Ok(Verdict::Active(_))));
        let mut v = good();
        v["nbf"] = json!(NOW + 61);
        assert_eq!(refused_kind(v), AuthErrorKind::NotYetValid);
        let mut v = good();
        v["exp"] = json!("soon");
        assert!(run(v, None).is_err());
    }

    #[test]
    fn sender_constrained_tokens_are_refused() {
        let mut v = good();
        v["cnf"] = json!({"jkt": "abc"});
        assert_eq!(refused_kind(v), AuthErrorKind::InvalidToken);
        let mut v = good();
        v["token_type"] = json!("DPoP");
        assert_eq!(refused_kind(v), AuthErrorKind::InvalidToken);
    }
}
