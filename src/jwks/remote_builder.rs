//! Building a [`RemoteJwks`]: its settings, their defaults and bounds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::fetch::HttpFetch;
use super::remote::{RemoteJwks, Settings, Target};
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::guard::resource::{check_issuer, check_web_url};

const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MIN_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const STALE_WINDOW: Duration = Duration::from_secs(24 * 3600);
const COOLDOWN: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 1024 * 1024;

/// The longest TTL or stale window accepted.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest refetch cooldown accepted.
const MAX_COOLDOWN: Duration = Duration::from_secs(3600);
/// The longest fetch timeout accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest response size accepted.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Builds a [`RemoteJwks`].
#[must_use]
pub struct RemoteJwksBuilder {
    target: Target,
    settings: Settings,
    fetcher: Option<Arc<dyn HttpFetch>>,
    clock: Clock,
}

impl fmt::Debug for RemoteJwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwksBuilder")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .field("fetcher", &self.fetcher)
            .finish()
    }
}

impl RemoteJwksBuilder {
    pub(super) fn new(target: Target) -> Self {
        Self {
            target,
            settings: Settings {
                default_ttl: DEFAULT_TTL,
                min_ttl: MIN_TTL,
                max_ttl: MAX_TTL,
                stale_window: STALE_WINDOW,
                cooldown: COOLDOWN,
                timeout: TIMEOUT,
                max_bytes: MAX_BYTES,
            },
            fetcher: None,
            clock: Clock::default(),
        }
    }

    /// How long keys are fresh when the response says nothing
    /// (`Cache-Control: max-age`, `Expires`). At most 30 days. Defaults
    /// to 1 hour.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.settings.default_ttl = ttl;
        self
    }

    /// The shortest freshness honoured, whatever the response says. From
    /// 1 second to 30 days, and at most `max_ttl`. Defaults to 5 minutes.
    pub fn min_ttl(mut self, ttl: Duration) -> Self {
        self.settings.min_ttl = ttl;
        self
    }

    /// The longest freshness honoured, whatever the response says. From
    /// 1 second to 30 days. Defaults to 24 hours.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.settings.max_ttl = ttl;
        self
    }

    /// How long past their expiry keys are still used while refreshes fail
    /// (stale-if-error). At most 30 days. Defaults to 24 hours.
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.settings.stale_window = window;
        self
    }

    /// After a refetch for an unknown `kid`, how long further unknown `kid`s
    /// cause no refetch. At most 1 hour. Defaults to 10 seconds.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.cooldown = cooldown;
        self
    }

    /// The total time allowed for one fetch (discovery included). From
    /// 1 ms to 5 minutes. Defaults to 10 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The largest response accepted, in bytes, from 1 byte to 16 MiB.
    /// Defaults to 1 MiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_bytes = bytes;
        self
    }

    /// Fetch with this [`HttpFetch`] instead of the built-in reqwest client
    /// (for your own reqwest client, behind a proxy or with a private CA:
    /// [`ReqwestFetch::with_client`](super::ReqwestFetch::with_client)).
    pub fn http_fetch(mut self, fetcher: impl HttpFetch) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Use the guard's clock (a key source the guard builds itself).
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the key source.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidJwksUri`] when the URL is not an absolute
    /// `https` URL (`http` is allowed for loopback hosts) or has a fragment;
    /// [`ConfigError::InvalidIssuer`] for a discovery issuer that is not a
    /// valid issuer identifier; [`ConfigError::OutOfRange`] for a setting
    /// outside its bounds (each setter says them);
    /// [`ConfigError::HttpClient`] when the default HTTP client cannot be
    /// built (or the `reqwest` feature is off and no fetcher was given).
    pub fn build(self) -> Result<RemoteJwks, ConfigError> {
        let jwks_uri = match &self.target {
            Target::JwksUri(u) => {
                let bad = |reason| ConfigError::InvalidJwksUri {
                    uri: u.to_string(),
                    reason,
                };
                let url = url::Url::parse(u).map_err(|_| bad("not an absolute URL"))?;
                check_web_url(&url, false).map_err(bad)?;
                if url.fragment().is_some() {
                    return Err(bad("a jwks_uri must not have a fragment"));
                }
                Some(u.clone())
            }
            Target::Discover(issuer) => {
                check_issuer(issuer)?;
                None
            }
        };
        let s = self.settings;
        check_duration("default_ttl", s.default_ttl, Duration::ZERO, MAX_LIFETIME)?;
        check_duration("min_ttl", s.min_ttl, Duration::from_secs(1), MAX_LIFETIME)?;
        check_duration("max_ttl", s.max_ttl, Duration::from_secs(1), MAX_LIFETIME)?;
        if s.min_ttl > s.max_ttl {
            return Err(ConfigError::OutOfRange {
                setting: "min_ttl",
                reason: "at most max_ttl",
            });
        }
        check_duration("stale_window", s.stale_window, Duration::ZERO, MAX_LIFETIME)?;
        check_duration("refetch_cooldown", s.cooldown, Duration::ZERO, MAX_COOLDOWN)?;
        check_duration("timeout", s.timeout, Duration::from_millis(1), MAX_TIMEOUT)?;
        if s.max_bytes == 0 || s.max_bytes > MAX_RESPONSE {
            return Err(ConfigError::OutOfRange {
                setting: "max_response_bytes",
                reason: "from 1 byte to 16 MiB",
            });
        }
        let fetcher: Arc<dyn HttpFetch> = match self.fetcher {
            Some(f) => f,
            #[cfg(feature = "reqwest")]
            None => Arc::new(super::ReqwestFetch::new()?),
            #[cfg(not(feature = "reqwest"))]
            None => {
                return Err(ConfigError::HttpClient {
                    reason: "the `reqwest` feature is off: supply a fetcher with `http_fetch`"
                        .to_owned(),
                });
            }
        };
        Ok(RemoteJwks::from_parts(
            self.target,
            jwks_uri,
            s,
            fetcher,
            self.clock,
        ))
    }
}

/// `Ok` when `value` is within `min..=max`; the bounds keep every instant
/// the cache computes far from overflow.
fn check_duration(
    setting: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::OutOfRange {
            setting,
            reason: match setting {
                "refetch_cooldown" => "at most 1 hour",
                "timeout" => "from 1 ms to 5 minutes",
                "min_ttl" | "max_ttl" => "from 1 second to 30 days",
                _ => "at most 30 days",
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_bounded() {
        let b = || RemoteJwks::builder("https://as.example.com/jwks");
        let range = |r: Result<RemoteJwks, ConfigError>| match r {
            Err(ConfigError::OutOfRange { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        assert!(b().build().is_ok());
        assert_eq!(range(b().max_ttl(Duration::MAX).build()), "max_ttl");
        assert_eq!(range(b().default_ttl(Duration::MAX).build()), "default_ttl");
        assert_eq!(
            range(b().stale_window(Duration::MAX).build()),
            "stale_window"
        );
        assert_eq!(
            range(b().refetch_cooldown(Duration::MAX).build()),
            "refetch_cooldown"
        );
        assert_eq!(range(b().timeout(Duration::MAX).build()), "timeout");
        assert_eq!(range(b().timeout(Duration::ZERO).build()), "timeout");
        assert_eq!(range(b().min_ttl(Duration::ZERO).build()), "min_ttl");
        assert_eq!(
            range(
                b().min_ttl(Duration::from_secs(600))
                    .max_ttl(Duration::from_secs(60))
                    .build()
            ),
            "min_ttl"
        );
        assert_eq!(
            range(b().max_response_bytes(0).build()),
            "max_response_bytes"
        );
        assert_eq!(
            range(b().max_response_bytes(usize::MAX).build()),
            "max_response_bytes"
        );
    }
}
