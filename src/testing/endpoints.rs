//! The test issuer's HTTP side: its state, RFC 8414 metadata, JWKS and the
//! token endpoint (`client_credentials` and RFC 8693 token exchange).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::key::{NEXT_ID, TestKey};

pub(super) struct Client {
    pub(super) secret: String,
    pub(super) scopes: Vec<String>,
}

pub(super) struct IssuerState {
    pub(super) issuer: String,
    /// The signing key first; older keys after it (still published).
    pub(super) keys: std::sync::RwLock<Vec<Arc<TestKey>>>,
    pub(super) clients: std::sync::RwLock<std::collections::HashMap<String, Client>>,
    pub(super) ttl: u64,
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl IssuerState {
    pub(super) fn signing_key(&self) -> Arc<TestKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys[0].clone()
    }

    pub(super) fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
    }

    /// `claims` with `iss`, `iat`, `exp` and `jti` added where absent.
    pub(super) fn complete(&self, claims: &Value) -> Value {
        let mut c = claims.clone();
        let now = unix_now();
        for (k, v) in [
            ("iss", json!(self.issuer)),
            ("iat", json!(now)),
            ("exp", json!(now.saturating_add(self.ttl))),
            (
                "jti",
                json!(format!("jti-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))),
            ),
        ] {
            if c.get(k).is_none() {
                c[k] = v;
            }
        }
        c
    }

    pub(super) fn mint(&self, claims: &Value) -> String {
        self.signing_key().sign(&self.complete(claims))
    }

    fn metadata(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i,
            // Required by RFC 8414 and by MCP clients; it only says no.
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks"),
            "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": self.all_scopes(),
            "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        })
    }

    /// The thumbprint of the key of a valid DPoP proof for this token
    /// endpoint (RFC 9449 §5), if the request carries one.
    fn dpop_binding(&self, headers: &http::HeaderMap) -> Result<Option<String>, GrantError> {
        if !headers.contains_key("dpop") {
            return Ok(None);
        }
        let htu = format!("{}/token", self.issuer);
        let check = crate::dpop::ProofCheck {
            method: &http::Method::POST,
            htu: &htu,
            now: unix_now(),
            window: 300,
            algorithms: crate::config::AlgSet::ALL,
            with_token: false,
        };
        crate::dpop::validate_proof(headers, &check, &crate::dpop::proof_header_cache())
            .map(|p| Some(p.jkt))
            .map_err(|_| {
                (
                    400,
                    "invalid_dpop_proof",
                    "the DPoP proof is not valid for this token endpoint",
                )
            })
    }

    fn all_scopes(&self) -> Vec<String> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<String> = clients.values().flat_map(|c| c.scopes.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The `client_credentials` grant.
    fn token(
        &self,
        auth: Option<&str>,
        dpop_jkt: Option<&str>,
        form: &[u8],
    ) -> Result<Value, (u16, &'static str, &'static str)> {
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(form).into_owned().collect();
        let bad_client = (401, "invalid_client", "unknown client or wrong secret");
        let (id, secret) = match auth.and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        }) {
            Some(b) => {
                let raw = base64_simd::STANDARD
                    .decode_to_vec(b.trim())
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok())
                    .ok_or(bad_client)?;
                let (id, secret) = raw.split_once(':').ok_or(bad_client)?;
                let dec = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (dec(id), dec(secret))
            }
            None => (
                params.get("client_id").cloned().ok_or(bad_client)?,
                params.get("client_secret").cloned().ok_or(bad_client)?,
            ),
        };
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        let client = clients
            .get(&id)
            .filter(|c| c.secret == secret)
            .ok_or(bad_client)?;
        match params.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {}
            Some(TOKEN_EXCHANGE) => return self.exchange(&id, &params),
            _ => {
                return Err((
                    400,
                    "unsupported_grant_type",
                    "only client_credentials and token exchange are supported",
                ));
            }
        }
        let scope: Vec<String> = match params.get("scope") {
            Some(s) => {
                let asked: Vec<String> = s
                    .split(' ')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect();
                if asked.iter().any(|a| !client.scopes.contains(a)) {
                    return Err((
                        400,
                        "invalid_scope",
                        "a requested scope is not allowed for this client",
                    ));
                }
                asked
            }
            None => client.scopes.clone(),
        };
        let resource = params.get("resource").ok_or((
            400,
            "invalid_target",
            "the resource parameter (RFC 8707) is required",
        ))?;
        let mut claims = json!({
            "sub": id, "client_id": id, "aud": resource, "scope": scope.join(" "),
        });
        if let Some(jkt) = dpop_jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        let token = self.mint(&claims);
        let token_type = if dpop_jkt.is_some() { "DPoP" } else { "Bearer" };
        Ok(json!({
            "access_token": token, "token_type": token_type, "expires_in": self.ttl, "scope": scope.join(" "),
        }))
    }
}

/// RFC 8693's grant type and token type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

type GrantError = (u16, &'static str, &'static str);

impl IssuerState {
    /// The claims of `token` if this issuer signed it and it has not expired.
    fn verified(&self, token: &str) -> Option<serde_json::Map<String, Value>> {
        let parts: crate::verify::jwt::Parts<'_> = crate::verify::jwt::split(token).ok()?;
        let set = crate::jwks::KeySet::from_json(self.jwks().to_string().as_bytes()).ok()?;
        let alg = crate::config::Algorithm::from_name(&parts.header.alg)?;
        let signed = set.candidates(parts.header.kid.as_deref()).any(|k| {
            k.key
                .verify(alg, parts.signing_input.as_bytes(), &parts.signature)
        });
        let claims: serde_json::Map<String, Value> = serde_json::from_slice(&parts.payload).ok()?;
        let fresh = claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|e| e > unix_now());
        let ours = claims.get("iss").and_then(Value::as_str) == Some(self.issuer.as_str());
        (signed && fresh && ours).then_some(claims)
    }

    /// RFC 8693 token exchange: a token this issuer signed, for `resource`,
    /// with at most its scopes, recording `client` as the actor.
    fn exchange(
        &self,
        client: &str,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<Value, GrantError> {
        let invalid = |d| (400, "invalid_request", d);
        if params.get("subject_token_type").map(String::as_str) != Some(ACCESS_TOKEN_TYPE) {
            return Err(invalid("subject_token_type must be an access token"));
        }
        let subject = params
            .get("subject_token")
            .and_then(|t| self.verified(t))
            .ok_or((400, "invalid_grant", "the subject token is not valid here"))?;
        let resource = params
            .get("resource")
            .ok_or(invalid("the resource parameter is required"))?;
        let held: Vec<&str> = subject
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        let scope = match params.get("scope") {
            Some(asked) => {
                if asked
                    .split(' ')
                    .any(|s| !s.is_empty() && !held.contains(&s))
                {
                    return Err((
                        400,
                        "invalid_scope",
                        "a scope the subject token does not hold",
                    ));
                }
                asked.clone()
            }
            None => held.join(" "),
        };
        let mut act = json!({ "sub": client });
        if let Some(previous) = subject.get("act") {
            act["act"] = previous.clone();
        }
        let now = unix_now();
        let exp = subject
            .get("exp")
            .and_then(Value::as_u64)
            .unwrap_or(now)
            .min(now.saturating_add(self.ttl));
        let token = self.mint(&json!({
            "sub": subject.get("sub"), "client_id": subject.get("client_id"),
            "aud": resource, "scope": scope, "act": act, "exp": exp,
        }));
        Ok(json!({
            "access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer", "expires_in": exp.saturating_sub(now), "scope": scope,
        }))
    }
}

pub(super) fn issuer_routes(state: Arc<IssuerState>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    let meta = {
        let s = state.clone();
        move || {
            let s = s.clone();
            async move { axum::Json(s.metadata()) }
        }
    };
    let jwks = {
        let s = state.clone();
        move || {
            let s = s.clone();
            async move { axum::Json(s.jwks()) }
        }
    };
    let token = {
        let s = state;
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let auth = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let issued = s
                    .dpop_binding(&headers)
                    .and_then(|jkt| s.token(auth, jkt.as_deref(), &body));
                match issued {
                    Ok(v) => (StatusCode::OK, axum::Json(v)),
                    Err((status, error, description)) => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                        axum::Json(json!({ "error": error, "error_description": description })),
                    ),
                }
            }
        }
    };
    axum::Router::new()
        .route("/.well-known/oauth-authorization-server", get(meta.clone()))
        .route("/.well-known/openid-configuration", get(meta))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .route(
            "/authorize",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "error": "unsupported_response_type",
                        "error_description": "the development issuer only supports client_credentials",
                    })),
                )
            }),
        )
}
