//! [`Grant`]: how an [`AuthorizedClient`](super::AuthorizedClient) gets
//! tokens from the authorization server discovery leads it to, and
//! [`Assertion`]: a JWT the workload is given (a Kubernetes projected
//! service-account token, an ID token), read fresh for every request.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::authorization_code::AuthorizationCode;
use super::token::ClientError;
use super::token_request::{Issued, TokenEndpoint, refusal};
use crate::introspection::ClientAuth;

/// RFC 7523 §2.1.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The largest assertion read.
const MAX_ASSERTION: u64 = 64 * 1024;

/// A JWT the platform gives the workload. Read again for every token
/// request, so a rotated file (Kubernetes rewrites projected tokens before
/// they expire) is picked up. Never logged.
#[derive(Clone)]
pub struct Assertion(Source);

#[derive(Clone)]
enum Source {
    File(PathBuf),
    Env(String),
    Value(Arc<str>),
}

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::File(p) => write!(f, "Assertion(file {})", p.display()),
            Source::Env(n) => write!(f, "Assertion(env {n})"),
            Source::Value(_) => f.write_str("Assertion([redacted])"),
        }
    }
}

impl Assertion {
    /// Read from this file (e.g.
    /// `/var/run/secrets/tokens/mcp-token`).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(Source::File(path.into()))
    }

    /// Read from this environment variable.
    pub fn env(name: impl Into<String>) -> Self {
        Self(Source::Env(name.into()))
    }

    /// This value (it will not change).
    pub fn value(jwt: impl Into<Arc<str>>) -> Self {
        Self(Source::Value(jwt.into()))
    }

    /// The assertion now.
    pub(crate) fn read(&self) -> Result<String, ClientError> {
        let fail = |s: String| ClientError::Unavailable(s);
        let raw = match &self.0 {
            Source::Value(v) => v.to_string(),
            Source::Env(name) => std::env::var(name)
                .map_err(|_| fail(format!("the assertion variable {name} is not set")))?,
            Source::File(path) => {
                let len = std::fs::metadata(path)
                    .map_err(|e| fail(format!("reading the assertion {}: {e}", path.display())))?
                    .len();
                if len > MAX_ASSERTION {
                    return Err(fail(format!(
                        "the assertion {} is over 64 KiB",
                        path.display()
                    )));
                }
                std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("reading the assertion {}: {e}", path.display())))?
            }
        };
        let jwt = raw.trim();
        if jwt.is_empty() || jwt.split('.').count() != 3 {
            return Err(fail("the assertion is not a compact JWT".into()));
        }
        Ok(jwt.to_owned())
    }
}

/// The enterprise identity provider of the ID-JAG flow (enterprise-managed
/// authorization): it exchanges the person's ID token for an identity
/// assertion authorization grant (ID-JAG) for the MCP server's
/// authorization server (RFC 8693 token exchange).
#[derive(Debug, Clone)]
pub struct EnterpriseIdp {
    token_endpoint: String,
    client: ClientAuth,
    id_token: Assertion,
}

impl EnterpriseIdp {
    /// The IdP's token endpoint (configured, never discovered), this
    /// client's authentication there, and the ID token to exchange.
    pub fn new(token_endpoint: impl Into<String>, client: ClientAuth, id_token: Assertion) -> Self {
        Self {
            token_endpoint: token_endpoint.into(),
            client,
            id_token,
        }
    }

    pub(crate) fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }
}

/// How tokens are had at the authorization server discovery finds.
#[derive(Debug, Clone)]
pub struct Grant(pub(crate) Kind);

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    ClientCredentials(ClientAuth),
    JwtBearer(ClientAuth, Assertion),
    Enterprise(ClientAuth, EnterpriseIdp),
    AuthorizationCode(Arc<AuthorizationCode>),
}

impl Grant {
    /// `client_credentials` (RFC 6749 §4.4): an agent acting as itself.
    pub fn client_credentials(client: ClientAuth) -> Self {
        Self(Kind::ClientCredentials(client))
    }

    /// Workload identity federation: the RFC 7523 `jwt-bearer` grant with
    /// a JWT the platform issued to this workload. `client` is usually
    /// [`ClientAuth::none`] with the client id registered for the workload.
    pub fn jwt_bearer(client: ClientAuth, assertion: Assertion) -> Self {
        Self(Kind::JwtBearer(client, assertion))
    }

    /// Enterprise-managed authorization: the ID token is exchanged at
    /// `idp` for an ID-JAG, then presented to the MCP server's
    /// authorization server as a `jwt-bearer` grant, authenticated as
    /// `client`.
    pub fn enterprise(client: ClientAuth, idp: EnterpriseIdp) -> Self {
        Self(Kind::Enterprise(client, idp))
    }

    /// A person's authorization code flow.
    pub fn authorization_code(flow: AuthorizationCode) -> Self {
        Self(Kind::AuthorizationCode(Arc::new(flow)))
    }

    /// The configured client authentication, when the grant carries one
    /// (it then goes only to trusted issuers).
    pub(crate) fn configured_client(&self) -> Option<&ClientAuth> {
        match &self.0 {
            Kind::ClientCredentials(c) | Kind::JwtBearer(c, _) | Kind::Enterprise(c, _) => Some(c),
            Kind::AuthorizationCode(flow) => flow.pre_registered_client(),
        }
    }

    /// Whether the grant carries a credential of its own (anything but a
    /// person's flow with a dynamically registered or public client).
    pub(crate) fn needs_trust(&self) -> bool {
        match &self.0 {
            Kind::ClientCredentials(_) | Kind::JwtBearer(..) | Kind::Enterprise(..) => true,
            Kind::AuthorizationCode(flow) => flow.pre_registered_client().is_some(),
        }
    }
}

/// Adds `resource` and `scope` to a grant's form.
fn with_target(
    mut form: Vec<(&'static str, String)>,
    resource: &str,
    scope: &str,
) -> Vec<(&'static str, String)> {
    form.push(("resource", resource.to_owned()));
    if !scope.is_empty() {
        form.push(("scope", scope.to_owned()));
    }
    form
}

/// A `jwt-bearer` grant with `assertion`.
pub(crate) async fn jwt_bearer(
    endpoint: &TokenEndpoint,
    client: &ClientAuth,
    assertion: String,
    resource: &str,
    scope: &str,
) -> Result<Issued, ClientError> {
    let form = vec![
        ("grant_type", JWT_BEARER.to_owned()),
        ("assertion", assertion),
    ];
    endpoint
        .request(client, with_target(form, resource, scope))
        .await
}

/// The ID-JAG for `resource` at the authorization server `audience`, from
/// the enterprise IdP.
pub(crate) async fn id_jag(
    idp: &EnterpriseIdp,
    at_idp: &TokenEndpoint,
    audience: &str,
    resource: &str,
    scope: &str,
) -> Result<String, ClientError> {
    let form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
        ),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id-jag".to_owned(),
        ),
        ("subject_token", idp.id_token.read()?),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token".to_owned(),
        ),
        ("audience", audience.to_owned()),
    ];
    let resp = at_idp
        .post(Some(&idp.client), with_target(form, resource, scope))
        .await?;
    if resp.status != 200 {
        return Err(refusal(&resp.body, resp.status, "the identity provider"));
    }
    // RFC 8693 §2.2.1: the ID-JAG is the `access_token` (`token_type` N_A).
    #[derive(serde::Deserialize)]
    struct Exchanged {
        access_token: Option<String>,
    }
    serde_json::from_slice::<Exchanged>(&resp.body)
        .ok()
        .and_then(|e| e.access_token)
        .filter(|t| !t.is_empty())
        .ok_or(ClientError::BadTokenResponse(
            "the identity provider's answer has no access_token (the ID-JAG)",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_are_read_fresh_and_never_shown() {
        let dir = std::env::temp_dir().join(format!("mrg-assertion-{}", std::process::id()));
        std::fs::write(&dir, "a.b.c\n").unwrap();
        let a = Assertion::file(&dir);
        assert_eq!(
            format!("{a:?}"),
            format!("Assertion(file {})", dir.display())
        );
        assert_eq!(a.read().unwrap(), "a.b.c");
        std::fs::write(&dir, "d.e.f").unwrap();
        assert_eq!(a.read().unwrap(), "d.e.f");
        std::fs::write(&dir, "not a jwt").unwrap();
        assert!(a.read().is_err());
        std::fs::remove_file(&dir).unwrap();
        assert!(a.read().is_err());
        let v = Assertion::value("x.y.z");
        assert_eq!(format!("{v:?}"), "Assertion([redacted])");
        assert!(Assertion::env("MRG_SURELY_UNSET_VARIABLE").read().is_err());
    }
}
