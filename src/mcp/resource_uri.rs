//! Resource URIs in one form before they meet the policy's patterns
//! (RFC 3986 §6.2.2), so that `FILE:///secret/%61` or
//! `file:///public/../secret/a` cannot dodge a rule on `file:///secret/*`.
//!
//! - the scheme and the host are lowercased;
//! - percent-encoded unreserved characters are decoded (`%61` -> `a`,
//!   `%2E` -> `.`), other percent-encodings get uppercase hex (`%2f` ->
//!   `%2F`);
//! - `.` and `..` segments of a hierarchical path are removed (RFC 3986
//!   §5.2.4);
//! - refused: no scheme, a malformed percent-encoding, an encoded `/`, `\`
//!   or NUL in the path (a server that decodes it would see another path),
//!   a raw `\`, space or control character.
//!
//! Everything else (the query, the fragment, non-ASCII characters, the
//! braces of a URI template) is kept as it is.

/// The normalized form of `uri`, or why it has none.
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
    let mut out = scheme.to_ascii_lowercase();
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
    let path = decode_unreserved(path, true)?;
    if path.starts_with('/') {
        out.push_str(&remove_dot_segments(&path));
    } else {
        out.push_str(&path);
    }
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
        let v = u8::from_str_radix(hex, 16).map_err(|_| "a malformed percent-encoding")?;
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("a malformed percent-encoding");
        }
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

/// RFC 3986 §5.2.4, on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // A trailing dot segment leaves a directory: keep the slash.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form() {
        for (input, want) in [
            ("file:///secret/a", "file:///secret/a"),
            ("FILE:///secret/%61", "file:///secret/a"),
            ("file:///public/../secret/a", "file:///secret/a"),
            ("file:///public/%2E%2E/secret/a", "file:///secret/a"),
            ("file:///a/./b/.", "file:///a/b/"),
            ("file:///a/b/..", "file:///a/"),
            ("file:///../../etc", "file:///etc"),
            (
                "HTTPS://Docs.Example.COM/Guide?q=%2f#Top",
                "https://docs.example.com/Guide?q=%2F#Top",
            ),
            ("todo://Items/1", "todo://items/1"),
            ("urn:ietf:rfc:3986", "urn:ietf:rfc:3986"),
            ("file:///{path}", "file:///{path}"),
            ("file:///caf%C3%A9", "file:///caf%C3%A9"),
            ("file:///café", "file:///café"),
            ("x://User@HOST:8/p", "x://User@host:8/p"),
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
            "file:///a%2Fb",
            "file:///a%2fb",
            "file:///a%5Cb",
            "file:///a%00",
            "file:///a%zz",
            "file:///a%4",
            "file:///a\\b",
            "file:///a b",
            "file:///a\nb",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
