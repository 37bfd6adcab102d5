//! The upstream OpenID Provider, spoken to as a confidential client: discovery, the
//! authorization request (code + PKCE S256 + state + nonce), the code exchange, refreshes,
//! revocation (RFC 7009) and the ID token's claim checks.
//!
//! Hand-written rather than the `openidconnect` crate: the protocol parts needed are a few small
//! form posts on the HTTP client the workspace already has (reqwest), and what matters most here
//! — a refresh that is never sent twice, classified into "refused" (the session ends) versus
//! "transient" (503, the session is kept) — is this module's own logic either way.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use reqwest::header::{HeaderName, HeaderValue, InvalidHeaderValue};

use super::config::{check_http_url, BffConfig, OidcClient, UpstreamKind};
use super::store::BffUser;
use super::tutorial::Tutorial;

/// The parts of the discovery document the BFF uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// Must equal `--upstream-issuer` exactly.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// RFC 7009 revocation endpoint, if offered.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RP-Initiated Logout, if offered.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// PKCE methods, if listed.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the provider always sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// What the token endpoint answered.
#[derive(Clone, Deserialize)]
pub struct TokenAnswer {
    /// Access token.
    pub access_token: String,
    /// Lifetime (s).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Refresh token (absent when the provider does not rotate: keep the previous one).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// ID token.
    #[serde(default)]
    pub id_token: Option<String>,
}

/// Why a token request did not give tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The provider refused the grant (`invalid_grant`): the refresh token is dead.
    #[error("refused by the provider: {0}")]
    Refused(String),
    /// Any other 4xx (a client or configuration error): logged; the session is kept.
    #[error("rejected by the provider ({0}): {1}")]
    Rejected(u16, String),
    /// Network failure, timeout, 5xx, 429 or an unreadable answer: try again later.
    #[error("provider unavailable: {0}")]
    Transient(String),
}

/// The upstream: an OpenID Provider or a backend with the tutorial's contract.
#[derive(Debug, Clone)]
pub struct Upstream {
    cfg: BffConfig,
    provider: Provider,
    http: reqwest::Client,
}

/// Which kind, ready to use.
#[derive(Debug, Clone)]
enum Provider {
    Oidc(Oidc),
    Tutorial(Tutorial),
}

/// An OpenID Provider, discovered.
#[derive(Debug, Clone)]
pub struct Oidc {
    client: OidcClient,
    /// Its discovery document.
    pub discovery: Discovery,
    http: reqwest::Client,
}

impl Upstream {
    /// Ready to use: an OpenID Provider is discovered first (an error names what is wrong); a
    /// tutorial-kind backend needs nothing at start (it has nothing to discover, and one that is
    /// down at start is a 503 per request, as later).
    pub async fn discover(cfg: BffConfig) -> Result<Upstream, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let provider = match &cfg.kind {
            UpstreamKind::Oidc(client) => {
                Provider::Oidc(Oidc::discover(client.clone(), http.clone()).await?)
            }
            UpstreamKind::Tutorial { base } => {
                Provider::Tutorial(Tutorial::new(base.clone(), http.clone()))
            }
        };
        Ok(Upstream {
            cfg,
            provider,
            http,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BffConfig {
        &self.cfg
    }

    /// The HTTP client (also the proxy's).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The OpenID Provider, when that is the upstream.
    pub fn oidc(&self) -> Option<&Oidc> {
        match &self.provider {
            Provider::Oidc(o) => Some(o),
            Provider::Tutorial(_) => None,
        }
    }

    /// The tutorial-kind backend, when that is the upstream.
    pub fn tutorial(&self) -> Option<&Tutorial> {
        match &self.provider {
            Provider::Tutorial(t) => Some(t),
            Provider::Oidc(_) => None,
        }
    }

    /// How the app signs in (told in `GET /api/bff/session`'s 401): `redirect` to
    /// `/api/bff/login`, or `password` to `POST /api/bff/signin`.
    pub fn login_kind(&self) -> &'static str {
        match &self.provider {
            Provider::Oidc(_) => "redirect",
            Provider::Tutorial(_) => "password",
        }
    }

    /// A refresh. Sent once: never retried here (a rotating provider with no grace would take a
    /// second use of the same token as theft).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenAnswer, TokenError> {
        match &self.provider {
            Provider::Oidc(o) => o.refresh(refresh_token).await,
            Provider::Tutorial(t) => t.refresh(refresh_token).await,
        }
    }

    /// Revokes `token` where the upstream can (RFC 7009 at a provider that has the endpoint;
    /// the tutorial's backend has no sign-out at all); whether it was sent and answered 200.
    pub async fn revoke(&self, token: &str, hint: &str) -> bool {
        match &self.provider {
            Provider::Oidc(o) => o.revoke(token, hint).await,
            Provider::Tutorial(_) => false,
        }
    }

    /// Where the app goes after logout (the provider's end-session page), if anywhere.
    pub fn end_session_url(&self) -> Option<String> {
        self.oidc().and_then(Oidc::end_session_url)
    }

    /// The header that carries the access token to an upstream API: `Authorization: Bearer` for
    /// an OpenID Provider's APIs, `x-access-token` for the tutorial's (it reads no other).
    pub fn access_header(
        &self,
        access_token: &str,
    ) -> Result<(HeaderName, HeaderValue), InvalidHeaderValue> {
        Ok(match &self.provider {
            Provider::Oidc(_) => (
                reqwest::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {access_token}"))?,
            ),
            Provider::Tutorial(_) => (
                HeaderName::from_static("x-access-token"),
                HeaderValue::from_str(access_token)?,
            ),
        })
    }
}

/// Claims of a checked ID token.
#[derive(Debug, Clone)]
pub struct IdClaims {
    /// The user.
    pub user: BffUser,
    /// All claims.
    pub raw: Value,
}

impl Oidc {
    /// This server as the provider's client.
    pub fn client(&self) -> &OidcClient {
        &self.client
    }

    /// Fetches and checks the discovery document (issuer compared exactly, endpoints https
    /// except on loopback, S256 offered when methods are listed).
    pub async fn discover(client: OidcClient, http: reqwest::Client) -> Result<Oidc, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            client.issuer.trim_end_matches('/')
        );
        let r = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("upstream discovery {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("upstream discovery {url}: HTTP {}", r.status()));
        }
        let discovery: Discovery = r
            .json()
            .await
            .map_err(|e| format!("upstream discovery {url}: not a discovery document: {e}"))?;
        if discovery.issuer != client.issuer {
            return Err(format!(
                "upstream discovery {url}: its issuer is '{}', not --upstream-issuer '{}' (compared exactly)",
                discovery.issuer, client.issuer
            ));
        }
        check_http_url("authorization_endpoint", &discovery.authorization_endpoint)?;
        check_http_url("token_endpoint", &discovery.token_endpoint)?;
        for e in [
            &discovery.revocation_endpoint,
            &discovery.end_session_endpoint,
        ]
        .into_iter()
        .flatten()
        {
            check_http_url("discovery endpoint", e)?;
        }
        if let Some(methods) = &discovery.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(format!(
                    "upstream discovery {url}: PKCE S256 is not offered ({methods:?})"
                ));
            }
        }
        Ok(Oidc {
            client,
            discovery,
            http,
        })
    }

    /// The authorization request URL.
    pub fn authorization_url(&self, state: &str, nonce: &str, code_verifier: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()));
        let mut u = Url::parse(&self.discovery.authorization_endpoint).expect("checked at start");
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client.client_id)
            .append_pair("redirect_uri", &self.client.redirect_uri())
            .append_pair("scope", &self.client.scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        u.into()
    }

    /// `Authorization: Basic` of RFC 6749 2.3.1 (each part form-urlencoded first).
    fn basic_auth(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                enc(&self.client.client_id),
                enc(&self.client.client_secret)
            ))
        )
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenAnswer, TokenError> {
        let r = self
            .http
            .post(&self.discovery.token_endpoint)
            .header(reqwest::header::AUTHORIZATION, self.basic_auth())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        let status = r.status().as_u16();
        let body = r
            .text()
            .await
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        if status == 200 {
            return serde_json::from_str(&body)
                .map_err(|e| TokenError::Transient(format!("token answer is not JSON: {e}")));
        }
        let error = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Err(match status {
            400 | 401 if error == "invalid_grant" => TokenError::Refused(error),
            429 | 500..=599 => TokenError::Transient(format!("HTTP {status} {error}")),
            _ => TokenError::Rejected(status, error),
        })
    }

    /// The authorization-code grant (PKCE verifier, same redirect URI).
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenAnswer, TokenError> {
        let redirect = self.client.redirect_uri();
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", code_verifier),
            ("redirect_uri", &redirect),
        ])
        .await
    }

    /// The refresh-token grant (sent once: see [`Upstream::refresh`]).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenAnswer, TokenError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Revokes `token` (RFC 7009) if the provider has a revocation endpoint; whether it was sent
    /// and answered 200.
    pub async fn revoke(&self, token: &str, hint: &str) -> bool {
        let Some(endpoint) = &self.discovery.revocation_endpoint else {
            return false;
        };
        match self
            .http
            .post(endpoint)
            .header(reqwest::header::AUTHORIZATION, self.basic_auth())
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::warn!(status = %r.status(), "upstream revocation refused");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "upstream revocation failed");
                false
            }
        }
    }

    /// The end-session URL the app navigates to after logout (RP-Initiated Logout 1.0), or
    /// `None` when the provider has none. It carries `client_id`, not `id_token_hint`: the URL is
    /// handed to the page, and no token may reach a script (the spec allows client_id with
    /// post_logout_redirect_uri when no hint is sent).
    pub fn end_session_url(&self) -> Option<String> {
        let endpoint = self.discovery.end_session_endpoint.as_ref()?;
        let mut u = Url::parse(endpoint).ok()?;
        u.query_pairs_mut()
            .append_pair("client_id", &self.client.client_id)
            .append_pair(
                "post_logout_redirect_uri",
                &self.client.post_logout_redirect_uri(),
            );
        Some(u.into())
    }

    /// Checks an ID token from the token endpoint (OpenID Connect Core 3.1.3.7): `iss` exactly,
    /// `aud` contains the client id (and `azp` is it whenever present or when there are several
    /// audiences), `nonce` when given, `exp` in the future and `iat` not in the future (60 s of
    /// clock skew), `sub` present, `alg` not `none`.
    ///
    /// The signature is not checked: the token came straight from the token endpoint over TLS
    /// (plain http is refused except on loopback), which Core 3.1.3.7 item 6 allows in place of
    /// the signature; checking it would need the provider's JWKS and its key rotation for no
    /// gain in this flow. A token handed in by anyone else is never read.
    pub fn check_id_token(
        &self,
        jwt: &str,
        nonce: Option<&str>,
        now_ms: i64,
    ) -> Result<IdClaims, String> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWS compact serialization".into());
        };
        let header: Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("unreadable header")?;
        if header["alg"]
            .as_str()
            .is_none_or(|a| a.eq_ignore_ascii_case("none"))
        {
            return Err("alg none".into());
        }
        let c: Value = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("unreadable claims")?;
        if c["iss"].as_str() != Some(self.client.issuer.as_str()) {
            return Err(format!("iss {} is not the issuer", c["iss"]));
        }
        let aud: Vec<&str> = match &c["aud"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let me = self.client.client_id.as_str();
        if !aud.contains(&me) {
            return Err(format!("aud {} does not contain the client id", c["aud"]));
        }
        match c["azp"].as_str() {
            Some(azp) if azp != me => return Err(format!("azp {azp} is another client")),
            None if aud.len() > 1 => return Err("several audiences and no azp".into()),
            _ => {}
        }
        if let Some(n) = nonce {
            if c["nonce"].as_str() != Some(n) {
                return Err("nonce does not match".into());
            }
        }
        let now = now_ms / 1000;
        let exp = c["exp"].as_i64().ok_or("no exp")?;
        if exp <= now - 60 {
            return Err("expired".into());
        }
        let iat = c["iat"].as_i64().ok_or("no iat")?;
        if iat > now + 60 {
            return Err("issued in the future".into());
        }
        let sub = c["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("no sub")?;
        let roles = c["roles"]
            .as_array()
            .or_else(|| c["realm_access"]["roles"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let user = BffUser {
            sub: sub.to_owned(),
            name: c["name"]
                .as_str()
                .or_else(|| c["preferred_username"].as_str())
                .map(str::to_owned),
            email: c["email"].as_str().map(str::to_owned),
            roles,
        };
        Ok(IdClaims { user, raw: c })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream() -> Oidc {
        Oidc {
            client: OidcClient {
                issuer: "https://id.example".into(),
                client_id: "app".into(),
                client_secret: "s".into(),
                scopes: "openid".into(),
                origin: "https://app.example".into(),
            },
            discovery: Discovery {
                issuer: "https://id.example".into(),
                authorization_endpoint: "https://id.example/auth".into(),
                token_endpoint: "https://id.example/token".into(),
                revocation_endpoint: None,
                end_session_endpoint: None,
                code_challenge_methods_supported: None,
                authorization_response_iss_parameter_supported: true,
            },
            http: reqwest::Client::new(),
        }
    }

    fn jwt(header: Value, claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!("{}.{}.sig", enc(&header), enc(&claims))
    }

    const NOW_MS: i64 = 1_800_000_000_000;

    fn good() -> Value {
        json!({"iss": "https://id.example", "aud": "app", "sub": "u1", "nonce": "n1",
               "exp": NOW_MS / 1000 + 300, "iat": NOW_MS / 1000, "name": "U",
               "realm_access": {"roles": ["ROLE_USER"]}})
    }

    #[test]
    fn a_good_id_token_gives_the_user() {
        let t = jwt(json!({"alg": "RS256"}), good());
        let c = upstream().check_id_token(&t, Some("n1"), NOW_MS).unwrap();
        assert_eq!(c.user.sub, "u1");
        assert_eq!(c.user.roles, ["ROLE_USER"]);
        assert_eq!(c.user.name.as_deref(), Some("U"));
        let mut multi = good();
        multi["aud"] = json!(["app", "api"]);
        multi["azp"] = json!("app");
        assert!(upstream()
            .check_id_token(&jwt(json!({"alg": "ES256"}), multi), Some("n1"), NOW_MS)
            .is_ok());
    }

    #[test]
    fn each_claim_check_refuses_its_own_fault() {
        let u = upstream();
        let cases: Vec<(&str, Value, Value)> = vec![
            ("alg none", json!({"alg": "none"}), good()),
            (
                "iss",
                json!({"alg": "RS256"}),
                json!({"iss": "https://id.example/"}),
            ),
            ("aud", json!({"alg": "RS256"}), json!({"aud": "other"})),
            (
                "azp other",
                json!({"alg": "RS256"}),
                json!({"azp": "other"}),
            ),
            (
                "several aud, no azp",
                json!({"alg": "RS256"}),
                json!({"aud": ["app", "api"]}),
            ),
            ("nonce", json!({"alg": "RS256"}), json!({"nonce": "n2"})),
            ("no nonce", json!({"alg": "RS256"}), json!({"nonce": null})),
            (
                "expired",
                json!({"alg": "RS256"}),
                json!({"exp": NOW_MS / 1000 - 61}),
            ),
            (
                "future iat",
                json!({"alg": "RS256"}),
                json!({"iat": NOW_MS / 1000 + 61}),
            ),
            ("no sub", json!({"alg": "RS256"}), json!({"sub": ""})),
        ];
        for (what, header, patch) in cases {
            let mut c = good();
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            let r = u.check_id_token(&jwt(header, c), Some("n1"), NOW_MS);
            assert!(r.is_err(), "{what} was accepted");
        }
        assert!(u.check_id_token("a.b", Some("n1"), NOW_MS).is_err());
    }
}
