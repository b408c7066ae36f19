//! [`LoopbackRedirect`]: the redirect URI of a CLI (RFC 8252 §7.3): a
//! port on 127.0.0.1 that takes the browser's one redirect back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::authorization_code::UserAgent;
use super::token::ClientError;

/// The largest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;

type Open = dyn Fn(&str) + Send + Sync;

/// A [`UserAgent`] for command-line agents: listens on `127.0.0.1` (a port
/// of its own), hands the authorization URL to `open` (launch a browser,
/// print it: the application decides), and waits for the browser to come
/// back to `http://127.0.0.1:<port>/callback` (at most `timeout`, 5
/// minutes by default).
///
/// ```no_run
/// use mcp_resource_guard::client::{AuthorizationCode, Grant, LoopbackRedirect};
///
/// let browser = LoopbackRedirect::bind(|url| eprintln!("Open {url} to sign in"))?;
/// let grant = Grant::authorization_code(AuthorizationCode::new(browser.redirect_uri(), browser));
/// # let _ = grant; Ok::<(), std::io::Error>(())
/// ```
pub struct LoopbackRedirect {
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
    redirect_uri: String,
    open: Arc<Open>,
    timeout: Duration,
}

impl fmt::Debug for LoopbackRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackRedirect")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl LoopbackRedirect {
    /// Binds a free port on 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub fn bind(open: impl Fn(&str) + Send + Sync + 'static) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener: std::sync::Mutex::new(Some(listener)),
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            open: Arc::new(open),
            timeout: Duration::from_secs(300),
        })
    }

    /// How long to wait for the browser.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The redirect URI to register and send.
    pub fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }
}

/// The request target of a `GET` request head, if it is one.
fn target(head: &str) -> Option<&str> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(t), Some(v)) if v.starts_with("HTTP/1.") && t.starts_with('/') => {
            Some(t)
        }
        _ => None,
    }
}

#[async_trait]
impl UserAgent for LoopbackRedirect {
    async fn authorize(&self, authorization_url: &str) -> Result<String, ClientError> {
        let fail = |s: &str| ClientError::AuthorizationResponse(s.to_owned());
        let std_listener = {
            let guard = self.listener.lock().unwrap_or_else(|p| p.into_inner());
            let l = guard
                .as_ref()
                .ok_or_else(|| fail("the loopback listener is gone"))?;
            l.try_clone()
                .map_err(|_| fail("the loopback listener cannot be shared"))?
        };
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|_| fail("the loopback listener cannot be used"))?;
        (self.open)(authorization_url);
        let wait = async {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let found = target(&head)
                    .filter(|t| t.split('?').next() == Some("/callback"))
                    .map(str::to_owned);
                let (status, text) = match found {
                    Some(_) => ("200 OK", "Signed in. You can close this window."),
                    None => ("404 Not Found", "Not found."),
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                if let Some(t) = found {
                    let origin = self.redirect_uri.trim_end_matches("/callback");
                    return format!("{origin}{t}");
                }
            }
        };
        tokio::time::timeout(self.timeout, wait)
            .await
            .map_err(|_| fail("the browser did not come back in time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_request_lines_are_read() {
        assert_eq!(
            target("GET /callback?code=1 HTTP/1.1\r\n"),
            Some("/callback?code=1")
        );
        assert_eq!(target("POST /callback HTTP/1.1\r\n"), None);
        assert_eq!(target("GET http://x/callback HTTP/1.1\r\n"), None);
        assert_eq!(target(""), None);
    }

    #[tokio::test]
    async fn the_browsers_redirect_is_taken() {
        let agent = LoopbackRedirect::bind(|_| {}).unwrap();
        let uri = agent.redirect_uri();
        let browser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let addr = uri
                .trim_start_matches("http://")
                .trim_end_matches("/callback")
                .to_owned();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /favicon.ico HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut s2 = tokio::net::TcpStream::connect(s.peer_addr().unwrap())
                .await
                .unwrap();
            s2.write_all(b"GET /callback?code=abc&state=s HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s2.read_to_string(&mut out).await.unwrap();
            out
        });
        let back = agent
            .authorize("https://as.example/authorize")
            .await
            .unwrap();
        assert_eq!(back, format!("{}?code=abc&state=s", agent.redirect_uri()));
        assert!(browser.await.unwrap().starts_with("HTTP/1.1 200 OK"));
    }
}
