//! A POST body as the MCP layer judges it: read only when every server
//! decodes it the same way, and bounded.
//!
//! The layer judges UTF-8 JSON. A server decodes the body by its own
//! reading of the headers: Express's `express.json()` (the TypeScript SDK's
//! `createMcpExpressApp()`) decodes any charset `Content-Type` names
//! (`utf-7`, `utf-16le`, `latin1` through iconv-lite) and inflates any
//! `Content-Encoding` it knows, while the Python SDK reads the bytes as
//! they are. A body the layer read as one call could be another call to
//! such a server, so the layer reads only what all of them read alike:
//!
//! - exactly one `Content-Type`, `application/json` (any case), with no
//!   parameter but `charset=utf-8` (any case, quoted or not): anything else
//!   is `415` (the TypeScript SDK's own answer to a wrong media type), a
//!   JSON-RPC error `-32700`;
//! - `Content-Encoding` absent or `identity`, in every header value and
//!   every comma-separated token: anything else is `400` (`-32700`);
//! - at most the layer's `max_body_bytes` bytes, declared or read: `413`.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::json::{NotForwarded, Refusal};
use crate::error::{AuthError, AuthErrorKind, BoxError};

/// HTTP's optional whitespace, the only space trimmed around a media type
/// and its parameters: servers' parsers read any other (a no-break space,
/// a vertical tab) as part of the value.
const OWS: [char; 2] = [' ', '\t'];

/// `true` when `value` is `application/json` with no parameter but
/// `charset=utf-8`.
fn is_json_in_utf8(value: &[u8]) -> bool {
    // What MCP clients send.
    if value == b"application/json" {
        return true;
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim_matches(OWS);
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let Some((name, v)) = param.split_once('=') else {
            return false;
        };
        let v = v.trim_matches(OWS);
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        name.trim_matches(OWS).eq_ignore_ascii_case("charset") && v.eq_ignore_ascii_case("utf-8")
    })
}

/// Checks the headers that say how the body is decoded.
pub(crate) fn check_encoding(headers: &HeaderMap) -> Result<(), NotForwarded> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let one_json = match (types.next(), types.next()) {
        (Some(v), None) => is_json_in_utf8(v.as_bytes()),
        _ => false,
    };
    if !one_json {
        return Err(NotForwarded::Denied(AuthError::new(
            AuthErrorKind::UnsupportedMediaType,
            "the Content-Type is not one application/json with at most charset=utf-8",
        )));
    }
    let identity = headers.get_all(CONTENT_ENCODING).iter().all(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .all(|token| token.trim_ascii().eq_ignore_ascii_case(b"identity"))
    });
    if !identity {
        return Err(NotForwarded::Refused(Refusal::parse(
            "the body is encoded (Content-Encoding): the layer cannot judge it",
        )));
    }
    Ok(())
}

/// Reads a POST body up to `max` bytes, after [`check_encoding`].
pub(crate) async fn read<B>(headers: &HeaderMap, body: B, max: usize) -> Result<Bytes, NotForwarded>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    check_encoding(headers)?;
    let too_large = || {
        NotForwarded::Denied(AuthError::new(
            AuthErrorKind::BodyTooLarge,
            "the request body exceeds the size limit",
        ))
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(_) => Err(NotForwarded::Refused(Refusal::parse(
            "the request body could not be read",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn media_types_every_server_reads_alike() {
        for ok in [
            &b"application/json"[..],
            b"Application/JSON",
            b"application/json; charset=utf-8",
            b"application/json;charset=UTF-8",
            b"application/json ; charset = \"utf-8\" ",
            b"application/json;\tcharset=utf-8\t",
        ] {
            assert!(is_json_in_utf8(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b""[..],
            b"text/plain",
            b"application/json-seq",
            b"application/jsonx",
            b"application/json; charset=utf-7",
            b"application/json; charset=utf-16le",
            b"application/json; charset=latin1",
            b"application/json; charset=utf8",
            b"application/json; charset=utf-8; charset=utf-7",
            b"application/json; charset=utf-8, text/plain",
            b"application/json; foo=bar",
            b"application/json; charset",
            b"application/json;",
            b"application/json; charset=\"utf-8",
            b"\xC3\xA9application/json",
            b"application/json\xC2\xA0",
            b"application/json; charset=utf-8\x0B",
            b"application/json;\xC2\xA0charset=utf-8",
        ] {
            assert!(!is_json_in_utf8(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn every_content_type_and_encoding_value_is_read() {
        let json = ("content-type", &b"application/json"[..]);
        assert!(check_encoding(&headers(&[json])).is_ok());
        assert!(check_encoding(&headers(&[json, ("content-encoding", b"identity")])).is_ok());
        assert!(
            check_encoding(&headers(&[
                json,
                ("content-encoding", b"Identity, identity")
            ]))
            .is_ok()
        );
        let denied = |h: &[(&str, &[u8])]| match check_encoding(&headers(h)) {
            Err(NotForwarded::Denied(e)) => e.kind(),
            other => panic!("{other:?}"),
        };
        assert_eq!(denied(&[]), AuthErrorKind::UnsupportedMediaType);
        assert_eq!(
            denied(&[json, ("content-type", b"application/json")]),
            AuthErrorKind::UnsupportedMediaType
        );
        for enc in [
            &[&b"gzip"[..]][..],
            &[b"identity, gzip"],
            &[b"identity", b"deflate"],
            &[b""],
            &[b"identity,"],
        ] {
            let mut h = headers(&[json]);
            for v in enc {
                h.append(CONTENT_ENCODING, http::HeaderValue::from_bytes(v).unwrap());
            }
            assert!(
                matches!(check_encoding(&h), Err(NotForwarded::Refused(r)) if r.code == -32700),
                "{enc:?}"
            );
        }
    }
}
