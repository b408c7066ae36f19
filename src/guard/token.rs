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
pub(crate) enum Credentials<'a> {
    /// No `Authorization` header.
    None,
    /// An `Authorization` header with another scheme (e.g. `Basic`).
    OtherScheme,
    /// The raw bytes after `Bearer` and its spaces: not empty, not yet
    /// checked further (see [`validate`]).
    Bearer(&'a [u8]),
    /// The same after `DPoP` (RFC 9449 §7.1).
    Dpop(&'a [u8]),
}

fn malformed(detail: &'static str) -> AuthError {
    AuthError::new(AuthErrorKind::MalformedRequest, detail)
}

/// `true` for the characters of RFC 7235 token68 before the trailing `=`.
const fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// [`is_token68_char`] for every byte: one lookup per byte of a token.
const TOKEN68: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = is_token68_char(i as u8);
        i += 1;
    }
    t
};

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
pub(crate) fn is_token68(s: &[u8]) -> bool {
    let end = s.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    // `fold` rather than `all`: no early exit, so the loop vectorizes.
    end > 0
        && s[..end]
            .iter()
            .fold(true, |ok, b| ok & TOKEN68[*b as usize])
}

/// Reads the credentials of a request (RFC 6750 §2.1 only; never the query
/// string or the body).
///
/// Errors (400 `invalid_request`): an `access_token` query parameter, more than
/// one `Authorization` header, `Bearer` with an empty value. The token itself
/// is checked by [`validate`] (skipped for a token found, byte for byte, in
/// the verified-token cache: it was validated when it was cached).
pub(crate) fn extract<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Credentials<'a>, AuthError> {
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
    let value = value.as_bytes();
    // The common case first: `Bearer ` (as written, then in any case) and a
    // token right after one space.
    if let Some((prefix, token)) = value.split_at_checked(7)
        && (prefix == b"Bearer " || prefix.eq_ignore_ascii_case(b"bearer "))
        && token.first().is_some_and(|b| *b != b' ')
    {
        return Ok(Credentials::Bearer(token));
    }
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(i) => value.split_at(i),
        None => (value, &b""[..]),
    };
    // Bearer first: the common case pays one comparison.
    let dpop = !scheme.eq_ignore_ascii_case(b"bearer");
    if dpop && !scheme.eq_ignore_ascii_case(b"dpop") {
        return Ok(Credentials::OtherScheme);
    }
    let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    let token = &rest[start..];
    if token.is_empty() {
        return Err(malformed(if dpop {
            "DPoP without a token"
        } else {
            "Bearer without a token"
        }));
    }
    Ok(if dpop {
        Credentials::Dpop(token)
    } else {
        Credentials::Bearer(token)
    })
}

/// Checks a Bearer value: visible ASCII, token68.
pub(crate) fn validate(raw: &[u8]) -> Result<BearerToken, AuthError> {
    if !is_token68(raw) {
        return Err(malformed("the Bearer value is not a token68"));
    }
    // token68 characters are ASCII, so this cannot fail.
    let s =
        simdutf8::basic::from_utf8(raw).map_err(|_| malformed("the Bearer value is not ASCII"))?;
    Ok(BearerToken::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// What the guard does: extract, then validate a Bearer value.
    enum Outcome {
        None,
        OtherScheme,
        Bearer(BearerToken),
        Dpop(BearerToken),
    }

    fn run(values: &[&[u8]], uri: &str) -> Result<Outcome, AuthError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        Ok(match extract(&h, &uri.parse().unwrap())? {
            Credentials::None => Outcome::None,
            Credentials::OtherScheme => Outcome::OtherScheme,
            Credentials::Bearer(raw) => Outcome::Bearer(validate(raw)?),
            Credentials::Dpop(raw) => Outcome::Dpop(validate(raw)?),
        })
    }

    fn token(values: &[&[u8]]) -> String {
        match run(values, "/") {
            Ok(Outcome::Bearer(t)) => t.secret().to_owned(),
            _ => panic!("not a bearer token"),
        }
    }

    fn kind(values: &[&[u8]], uri: &str) -> AuthErrorKind {
        match run(values, uri) {
            Err(e) => e.kind(),
            Ok(_) => panic!("accepted"),
        }
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
        assert!(matches!(run(&[], "/"), Ok(Outcome::None)));
        assert!(matches!(run(&[], "/?x=access_token"), Ok(Outcome::None)));
        assert!(matches!(
            run(&[b"Basic dXNlcjpwdw=="], "/"),
            Ok(Outcome::OtherScheme)
        ));
        assert!(matches!(
            run(&[b"Bearerabc"], "/"),
            Ok(Outcome::OtherScheme)
        ));
        for v in [&b"DPoP abc"[..], b"dpop  abc"] {
            match run(&[v], "/") {
                Ok(Outcome::Dpop(t)) => assert_eq!(t.secret(), "abc"),
                _ => panic!("not a DPoP token"),
            }
        }
        assert_eq!(
            run(&[b"DPoP "], "/").err().map(|e| e.detail()),
            Some("DPoP without a token")
        );
    }

    #[test]
    fn debug_is_redacted() {
        let t = BearerToken::new("secret-token-value");
        assert_eq!(format!("{t:?}"), "BearerToken([redacted])");
    }
}
