//! [`AuthorizedClientBuilder`]: the settings of an
//! [`AuthorizedClient`](super::AuthorizedClient), checked in `build()`.

use std::sync::{Arc, Mutex};

use super::grant::Grant;
use super::http::AuthorizedClient;
use super::trust::TrustedIssuers;
use crate::error::ConfigError;
use crate::jwks::{HttpFetch, ReqwestFetch};

/// Builds an [`AuthorizedClient`].
#[must_use]
#[derive(Debug)]
pub struct AuthorizedClientBuilder {
    grant: Grant,
    trusted: Option<TrustedIssuers>,
    fetcher: Option<Arc<dyn HttpFetch>>,
    http: Option<reqwest::Client>,
    #[cfg(feature = "signing")]
    dpop: Option<Arc<super::DpopKey>>,
    max_step_ups: u32,
}

impl AuthorizedClientBuilder {
    pub(super) fn new(grant: Grant) -> Self {
        Self {
            grant,
            trusted: None,
            fetcher: None,
            http: None,
            #[cfg(feature = "signing")]
            dpop: None,
            max_step_ups: 1,
        }
    }

    /// The authorization servers the grant's credentials were registered
    /// at: discovery that leads anywhere else fails with
    /// [`ClientError::UntrustedAuthorizationServer`](super::ClientError::UntrustedAuthorizationServer)
    /// before any credential is sent. Required for every grant that
    /// carries a credential (client credentials, workload assertions,
    /// enterprise-managed, a pre-registered client).
    pub fn trusted_issuers(mut self, issuers: TrustedIssuers) -> Self {
        self.trusted = Some(issuers);
        self
    }

    /// Ask for DPoP-bound tokens where the authorization server offers
    /// them (ES256), and present them with proofs by `key` (RFC 9449).
    /// Feature `signing`.
    #[cfg(feature = "signing")]
    pub fn dpop(mut self, key: super::DpopKey) -> Self {
        self.dpop = Some(Arc::new(key));
        self
    }

    /// How many times one call may step up on a 403 `insufficient_scope`
    /// (default 1; at most 3).
    pub fn max_step_ups(mut self, n: u32) -> Self {
        self.max_step_ups = n;
        self
    }

    /// The HTTP client for discovery and token requests (tests, proxies).
    /// It must not follow redirects.
    pub fn http_fetch(mut self, fetcher: impl HttpFetch) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// The reqwest client for the requests to MCP servers; its redirect
    /// policy is yours to set (the default client follows none, since a
    /// redirect would carry the token elsewhere).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] when the grant carries a credential and
    /// no trusted issuers are set, or `max_step_ups` is over 3;
    /// [`ConfigError::HttpClient`] when reqwest cannot build its client.
    pub fn build(self) -> Result<AuthorizedClient, ConfigError> {
        if self.trusted.is_none() && self.grant.needs_trust() {
            return Err(ConfigError::OutOfRange {
                setting: "trusted issuers",
                reason: "set the authorization servers this client's credentials were registered at (trusted_issuers): they are never sent anywhere else",
            });
        }
        if self.max_step_ups > 3 {
            return Err(ConfigError::OutOfRange {
                setting: "max_step_ups",
                reason: "at most 3",
            });
        }
        let no_redirects = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| ConfigError::HttpClient {
                    reason: e.to_string(),
                })
        };
        let http = match self.http {
            Some(c) => c,
            None => no_redirects()?,
        };
        let fetcher: Arc<dyn HttpFetch> = match self.fetcher {
            Some(f) => f,
            None => Arc::new(ReqwestFetch::with_client(no_redirects()?)),
        };
        Ok(AuthorizedClient {
            http,
            fetcher,
            grant: self.grant,
            trusted: self.trusted,
            #[cfg(feature = "signing")]
            dpop: self.dpop,
            max_step_ups: self.max_step_ups,
            sessions: Mutex::default(),
        })
    }
}
