//! The Bearer token and its extraction from the `Authorization` header.

use std::fmt;

use http::{HeaderMap, Uri, header::AUTHORIZATION};

use crate::error::{AuthError, AuthErrorKind};

/// A Bearer access token as sent by a client.
///
/// Its `Debug` prints `BearerToken([redacted])`; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Box<str>);

impl BearerToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<Box<str>>) -> Self {
        Self(token.into())
    }

    /// The token itself.
    ///
    /// # Security warning
    ///
    /// This is a credential. Never log it, put it in an error message or send
    /// it anywhere but to the party that must verify it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// What the `Authorization` header holds.
#[derive(Debug)]
pub(crate) enum Credentials {
    /// No `Authorization` header.
    None,
    /// An `Authorization` header with another scheme (e.g. `Basic`).
    OtherScheme,
    /// A syntactically valid Bearer token.
    Bearer(BearerToken),
}

fn malformed(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::MalformedRequest, detail)
}

/// `true` for the characters of RFC 7235 token68 before the trailing `=`.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
pub(crate) fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(is_token68_char)
}

/// Reads the credentials of a request (RFC 6750 §2.1 only; never the query
/// string or the body).
///
/// Errors (400 `invalid_request`): an `access_token` query parameter, more than
/// one `Authorization` header, a header that is not visible ASCII, `Bearer`
/// with an empty or non-token68 value.
pub(crate) fn extract(headers: &HeaderMap, uri: &Uri) -> Result<Credentials, AuthError> {
    if let Some(q) = uri.query()
        && url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    {
        return Err(malformed(
            "access_token in the query string is not accepted (RFC 6750 §2.3 is not supported)",
        ));
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::None);
    };
    if values.next().is_some() {
        return Err(malformed("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| malformed("the Authorization header is not visible ASCII"))?;
    let (scheme, rest) = match value.find(' ') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::OtherScheme);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(malformed("Bearer without a token"));
    }
    if !is_token68(token) {
        return Err(malformed("the Bearer value is not a token68"));
    }
    Ok(Credentials::Bearer(BearerToken::new(token)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn run(values: &[&[u8]], uri: &str) -> Result<Credentials, AuthError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        extract(&h, &uri.parse().unwrap())
    }

    fn token(values: &[&[u8]]) -> String {
        match run(values, "/") {
            Ok(Credentials::Bearer(t)) => t.secret().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    fn kind(values: &[&[u8]], uri: &str) -> AuthErrorKind {
        run(values, uri).unwrap_err().kind()
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(token(&[b"Bearer abc.def.ghi"]), "abc.def.ghi");
        assert_eq!(token(&[b"bearer abc"]), "abc");
        assert_eq!(token(&[b"BEARER abc=="]), "abc==");
        assert_eq!(token(&[b"Bearer  abc"]), "abc");
    }

    #[test]
    fn malformed_requests() {
        use AuthErrorKind::MalformedRequest as M;
        assert_eq!(kind(&[b"Bearer a", b"Bearer b"], "/"), M);
        assert_eq!(kind(&[b"Bearer"], "/"), M);
        assert_eq!(kind(&[b"Bearer "], "/"), M);
        assert_eq!(kind(&[b"Bearer a b"], "/"), M);
        assert_eq!(kind(&[b"Bearer a\"b"], "/"), M);
        assert_eq!(kind(&[b"Bearer =abc"], "/"), M);
        assert_eq!(kind(&[b"Bearer \xff"], "/"), M);
        assert_eq!(kind(&[b"Bearer abc"], "/mcp?access_token=x"), M);
        assert_eq!(kind(&[], "/mcp?a=1&access%5Ftoken=x"), M);
    }

    #[test]
    fn other_schemes_and_none() {
        assert!(matches!(run(&[], "/"), Ok(Credentials::None)));
        assert!(matches!(
            run(&[], "/?x=access_token"),
            Ok(Credentials::None)
        ));
        assert!(matches!(
            run(&[b"Basic dXNlcjpwdw=="], "/"),
            Ok(Credentials::OtherScheme)
        ));
        assert!(matches!(
            run(&[b"Bearerabc"], "/"),
            Ok(Credentials::OtherScheme)
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let t = BearerToken::new("secret-token-value");
        assert_eq!(format!("{t:?}"), "BearerToken([redacted])");
    }
}
