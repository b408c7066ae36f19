//! Resource URIs in the one form the policy compares, or refused: so that
//! no spelling of a URI reaches a resource its rule does not cover, in any
//! reading a server behind the layer uses.
//!
//! Servers read a `params.uri` three ways: the TypeScript SDK looks
//! resources up by the WHATWG URL form (`new URL(uri).toString()`), the
//! Python SDK and rmcp compare the string as sent (and match templates on
//! it), and a server that reaches files or other hierarchies resolves the
//! path (RFC 3986). The layer judges the WHATWG form further normalized by
//! RFC 3986 §6.2.2, and refuses what could name another resource in the
//! other readings:
//!
//! 1. refused: a raw space, backslash or control character (WHATWG strips
//!    or rewrites them, RFC 3986 forbids them); a `.` or `..` path segment,
//!    also percent-encoded (a server comparing the string would keep it);
//!    an empty path segment (`//`: a file system reads `/a//b` as `/a/b`,
//!    and parsers disagree on `file:////x`);
//! 2. the WHATWG URL form (the `url` crate): for the special schemes
//!    (`http`, `https`, `ws`, `wss`, `ftp`, `file`) the host is lowercased,
//!    IDNA-mapped and numeric hosts written as dotted IPv4, default ports
//!    dropped, `file://localhost/` and the slash-less forms (`file:a`,
//!    `https:host/x`) spelled out; characters outside URL code points
//!    (`{`, `}`, spaces in templates, non-ASCII) percent-encoded;
//! 3. then RFC 3986: the scheme and the host (of every scheme) lowercased,
//!    percent-encoded unreserved characters decoded (`%61` -> `a`), other
//!    percent-encodings in uppercase hex (`%2f` -> `%2F`); refused: a
//!    malformed percent-encoding, an encoded `/`, `\` or NUL in the path (a
//!    server that decodes it would see another path);
//! 4. refused: a form that WHATWG reads as another URL once those
//!    percent-encodings are decoded (the judged form always reads as
//!    itself: a decoded Windows drive letter, `file://h/%63:/x`, made
//!    `url` 2.5.8 drop the host), and a `file` URL whose first path segment
//!    is a Windows drive letter spelled with `|` (`file:///c|/x`: Node's
//!    WHATWG parser, the TypeScript SDK's, reads `file:///c:/x`, the `url`
//!    crate keeps the `|`).
//!
//! The table of spellings is in the [module docs](super).
//!
//! Patterns in the policy go through the same steps (a `*` stays a `*`),
//! so a rule on `file:///secret/*` covers every spelling of those
//! resources.

/// The judged form of `uri`, or why it has none.
pub(crate) fn normalize(uri: &str) -> Result<String, &'static str> {
    if uri.chars().any(|c| c.is_control() || c == ' ' || c == '\\') {
        return Err("the URI holds a space, a backslash or a control character");
    }
    let colon = uri.find(':').ok_or("the URI has no scheme")?;
    let scheme = &uri[..colon];
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("the URI has no scheme");
    }
    check_path_segments(raw_path(&uri[colon + 1..]))?;
    let whatwg = url::Url::parse(uri).map_err(|_| "the URI is not a URL (WHATWG)")?;
    let judged = rfc3986(whatwg.as_str())?;
    // Decoding can change how WHATWG reads the rest (a decoded drive
    // letter). The judged form must read as itself, or a server that
    // decodes before it parses reaches another resource.
    let again = match url::Url::parse(&judged) {
        Ok(again) if again.as_str() == judged => again,
        _ => return Err("the URI reads as another once its percent-encodings are decoded"),
    };
    if again.scheme() == "file" && starts_with_piped_drive_letter(again.path()) {
        return Err("a Windows drive letter spelled with `|`: URL parsers read it differently");
    }
    Ok(judged)
}

/// `true` when `path`'s first segment is a Windows drive letter spelled
/// with `|` (`/c|`, `/c|/x`): WHATWG URL parsers disagree on whether it is
/// `c:`.
fn starts_with_piped_drive_letter(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 3
        && b[0] == b'/'
        && b[1].is_ascii_alphabetic()
        && b[2] == b'|'
        && matches!(b.get(3), None | Some(b'/'))
}

/// The path of the part after the scheme's `:` (after the authority, before
/// the query or fragment).
fn raw_path(rest: &str) -> &str {
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let hier = &rest[..end];
    match hier.strip_prefix("//") {
        Some(after) => &after[after.find('/').unwrap_or(after.len())..],
        None => hier,
    }
}

/// Refuses `.` and `..` segments (also percent-encoded) and empty segments
/// (but for a trailing slash).
fn check_path_segments(path: &str) -> Result<(), &'static str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let mut segments = path.split('/').peekable();
    while let Some(seg) = segments.next() {
        if seg.is_empty() && segments.peek().is_some() {
            return Err("an empty path segment");
        }
        if is_dot_segment(seg) {
            return Err("a dot segment in the path");
        }
    }
    Ok(())
}

/// `.` or `..`, each dot possibly percent-encoded (`%2e`, `%2E`).
fn is_dot_segment(seg: &str) -> bool {
    match after_dot(seg) {
        Some("") => true,
        Some(rest) => after_dot(rest) == Some(""),
        None => false,
    }
}

/// What follows a leading `.` or `%2e` (any case), if `s` starts with one.
fn after_dot(s: &str) -> Option<&str> {
    s.strip_prefix('.').or_else(|| {
        s.get(..3)
            .filter(|p| p.eq_ignore_ascii_case("%2e"))
            .and_then(|_| s.get(3..))
    })
}

/// RFC 3986 §6.2.2 on a WHATWG-serialized URL: lowercased scheme and host,
/// unreserved percent-encodings decoded, the others in uppercase hex.
fn rfc3986(uri: &str) -> Result<String, &'static str> {
    let colon = uri.find(':').ok_or("the URI has no scheme")?;
    let mut out = uri[..colon].to_ascii_lowercase();
    out.push(':');
    let rest = &uri[colon + 1..];
    // The path ends at the query or the fragment; those are kept as they are
    // (but for percent-encoding case).
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (hier, tail) = rest.split_at(end);
    let path = match hier.strip_prefix("//") {
        Some(after) => {
            let auth_end = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(auth_end);
            out.push_str("//");
            out.push_str(&authority_lowercased(&decode_unreserved(authority, false)?));
            path
        }
        None => hier,
    };
    out.push_str(&decode_unreserved(path, true)?);
    out.push_str(&decode_unreserved(tail, false)?);
    Ok(out)
}

/// Lowercases the host of an authority (`user@HOST:port`), not the user info.
fn authority_lowercased(authority: &str) -> String {
    match authority.rsplit_once('@') {
        Some((user, host)) => format!("{user}@{}", host.to_ascii_lowercase()),
        None => authority.to_ascii_lowercase(),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes `%XX` of unreserved characters and uppercases the others. In a
/// path, an encoded `/`, `\` or NUL is refused.
fn decode_unreserved(s: &str, path: bool) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            // Copy up to the next `%` (keeps multi-byte characters whole).
            let next = s[i..].find('%').map_or(s.len(), |j| i + j);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        let hex = s.get(i + 1..i + 3).ok_or("a malformed percent-encoding")?;
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("a malformed percent-encoding");
        }
        let v = u8::from_str_radix(hex, 16).map_err(|_| "a malformed percent-encoding")?;
        if path && matches!(v, b'/' | b'\\' | 0) {
            return Err("an encoded slash, backslash or NUL in the path");
        }
        if is_unreserved(v) {
            out.push(char::from(v));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        i += 3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form() {
        for (input, want) in [
            ("file:///secret/a", "file:///secret/a"),
            ("FILE:///secret/%61", "file:///secret/a"),
            ("file://localhost/secret/a", "file:///secret/a"),
            ("file://LOCALHOST/secret/a", "file:///secret/a"),
            ("file:/secret/a", "file:///secret/a"),
            ("file:secret/a", "file:///secret/a"),
            ("file:///dir/", "file:///dir/"),
            ("https:host/x", "https://host/x"),
            ("https://HOST:443/x", "https://host/x"),
            ("http://host:80/x", "http://host/x"),
            ("https://host:8443/x", "https://host:8443/x"),
            (
                "https://\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/x",
                "https://host/x",
            ),
            ("https://%65xample.com/", "https://example.com/"),
            ("https://2130706433/", "https://127.0.0.1/"),
            ("https://0x7f.1/", "https://127.0.0.1/"),
            ("https://h", "https://h/"),
            (
                "HTTPS://Docs.Example.COM/Guide?q=%2f#Top",
                "https://docs.example.com/Guide?q=%2F#Top",
            ),
            ("todo://Items/1", "todo://items/1"),
            ("urn:ietf:rfc:3986", "urn:ietf:rfc:3986"),
            ("file:///{path}", "file:///%7Bpath%7D"),
            ("file:///caf%c3%a9", "file:///caf%C3%A9"),
            ("file:///caf\u{e9}", "file:///caf%C3%A9"),
            ("x://User@HOST:8/p", "x://User@host:8/p"),
            ("file:///secret/*", "file:///secret/*"),
            ("file:///a.b/..c/...", "file:///a.b/..c/..."),
            ("file://h/%63:/x", "file://h/c:/x"),
            ("file:c|/x", "file:///c:/x"),
            ("file:///cc|/x", "file:///cc|/x"),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "no-scheme",
            ":x",
            "1x:/a",
            "https:",
            "file:///a%2Fb",
            "file:///a%2fb",
            "file:///a%5Cb",
            "file:///a%00",
            "file:///a%zz",
            "file:///a%4",
            "file:///a\\b",
            "file:///a b",
            "file:///a\nb",
            "file:///a\tb",
            " file:///a",
            "file:///public/../secret/a",
            "file:///a/./b",
            "file:///a/b/..",
            "file:///a/%2e%2E/b",
            "file:///a/.%2e/b",
            "file:///%2e",
            "file:///a/%2E./b",
            "file:///a/%2e",
            "file:secret/../x",
            "file:.//x",
            "todo:a/../b",
            "file:////x",
            "file:///a//b",
            "https://h//x",
            "file://localhost//x",
            "file:///c|/x",
            "file:///C|",
            "file://localhost/c|/x",
            "file:///%63|/x",
        ] {
            assert!(normalize(bad).is_err(), "{bad}: {:?}", normalize(bad));
        }
    }
}
