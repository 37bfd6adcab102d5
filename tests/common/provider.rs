//! A fake OpenID Provider behind the tabs' transport: its token and revocation endpoints, and a
//! resource server that accepts its access tokens. A foreign system (the real one, panva's
//! oidc-provider, is what e2e/tests/oidc.rs runs the release build against), faked with the
//! behaviour ../shared/OIDC.md records, which `fake_provider_matches_the_record` checks: refresh
//! tokens rotate on every use with NO grace, and presenting a used one revokes the whole grant
//! (the newest tokens too); five refreshes of one token answer 200 once and 400 `invalid_grant`
//! four times; access tokens are opaque; PKCE S256 is required. Runs on the world's fake clock.

use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use yew_session::config::{AppConfig, Backend as Kind, StorageMode, TokenHeader};
use yew_session::session::oidc::{query_value, Endpoints};
use yew_session::session::ports::{Clock, HttpRequest, HttpResponse};

use super::tutorial::make_jwt;
use super::{path_of, FakeClock};

pub const ISSUER: &str = "http://provider.test";
pub const CLIENT_ID: &str = "yew-session";
pub const APP_ORIGIN: &str = "http://app.test";

/// The app's configuration for this provider (discovery done: the endpoints are in it).
pub fn oidc_config() -> AppConfig {
    AppConfig {
        backend: Kind::Oidc,
        issuer: ISSUER.into(),
        client_id: CLIENT_ID.into(),
        storage_mode: StorageMode::Compat,
        token_header: TokenHeader::Bearer,
        api_base: ISSUER.into(),
        roles_claim: Some("realm_access.roles".into()),
        endpoints: Some(Endpoints {
            issuer: ISSUER.into(),
            authorization: format!("{ISSUER}/auth"),
            token: format!("{ISSUER}/token"),
            revocation: Some(format!("{ISSUER}/token/revocation")),
            end_session: Some(format!("{ISSUER}/session/end")),
        }),
        ..AppConfig::default()
    }
}

struct Grant {
    sub: String,
    /// The sign-in's nonce: oidc-provider repeats it in every refreshed ID token (the e2e's
    /// `oidc_provider` test checks the real one).
    nonce: String,
    revoked: bool,
    /// Why, for the failure messages.
    why: &'static str,
}

struct Code {
    grant: usize,
    challenge: String,
    nonce: String,
    redirect_uri: String,
}

pub struct FakeProvider {
    world: Rc<FakeClock>,
    /// Access-token lifetime (s).
    pub access_ttl_s: u64,
    /// Rotate refresh tokens (oidc-provider's default); off: a provider that keeps them and
    /// sends none in its answers.
    pub rotate: bool,
    /// Refresh answers carry a new ID token.
    pub id_token_on_refresh: bool,
    /// The subject the next refreshed ID token names (a provider gone wrong), when set.
    pub refreshed_sub: Option<String>,
    /// The nonce refreshed ID tokens carry instead of the sign-in's (a provider gone wrong).
    pub refreshed_nonce: Option<String>,
    grants: Vec<Grant>,
    refresh: HashMap<String, (usize, bool)>,
    access: HashMap<String, (usize, f64)>,
    codes: HashMap<String, Code>,
    seq: u64,
    /// Refreshes answered 200.
    pub refreshed: u32,
    /// `invalid_grant` answers (any grant type).
    pub invalid_grant: u32,
    /// Grants revoked because a used refresh token came back.
    pub revoked_by_reuse: u32,
    /// Revocation-endpoint calls that revoked a grant.
    pub revocations: u32,
}

fn json_answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

/// oidc-provider's answer, the same words for a reused, revoked, expired or unknown token (the
/// record); `why` is the fake's own reason, for a failing test's eyes only.
fn invalid_grant(why: &str) -> HttpResponse {
    let _ = why;
    json_answer(
        400,
        json!({"error": "invalid_grant", "error_description": "grant request is invalid"}),
    )
}

impl FakeProvider {
    pub fn new(world: Rc<FakeClock>) -> Self {
        Self {
            world,
            access_ttl_s: 60,
            rotate: true,
            id_token_on_refresh: true,
            refreshed_sub: None,
            refreshed_nonce: None,
            grants: Vec::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            codes: HashMap::new(),
            seq: 0,
            refreshed: 0,
            invalid_grant: 0,
            revoked_by_reuse: 0,
            revocations: 0,
        }
    }

    fn next(&mut self, kind: &str) -> String {
        self.seq += 1;
        format!("{kind}-{}", self.seq)
    }

    /// The provider's sign-in page, done: `url` is the app's authorization request; `sub`
    /// signs in. Returns the query the browser comes back to the redirect URI with.
    pub fn authorize(&mut self, url: &str, sub: &str) -> String {
        let (_, query) = url.split_once('?').expect("an authorization request");
        let get = |n| query_value(query, n).unwrap_or_else(|| panic!("no {n} in {url}"));
        assert_eq!(get("response_type"), "code");
        assert_eq!(get("client_id"), CLIENT_ID);
        assert_eq!(get("code_challenge_method"), "S256");
        self.grants.push(Grant {
            sub: sub.into(),
            nonce: get("nonce"),
            revoked: false,
            why: "",
        });
        let code = self.next("code");
        self.codes.insert(
            code.clone(),
            Code {
                grant: self.grants.len() - 1,
                challenge: get("code_challenge"),
                nonce: get("nonce"),
                redirect_uri: get("redirect_uri"),
            },
        );
        format!("?code={code}&state={}&iss={ISSUER}", get("state"))
    }

    fn id_token(&self, grant: usize, nonce: Option<&str>) -> String {
        let now = (self.world.now_ms() / 1000.0).floor();
        let sub = &self.grants[grant].sub;
        let mut roles = vec!["ROLE_USER"];
        if sub.starts_with("admin") {
            roles.push("ROLE_ADMIN");
        }
        let mut c = json!({"iss": ISSUER, "aud": CLIENT_ID, "sub": sub, "iat": now,
            "exp": now + 3600.0, "preferred_username": sub, "email": format!("{sub}@example.test"),
            "realm_access": {"roles": roles}});
        if let Some(n) = nonce {
            c["nonce"] = json!(n);
        }
        make_jwt(&c)
    }

    /// A token answer for `grant`: a new access token, a refresh token (`None`: none sent).
    fn tokens(
        &mut self,
        grant: usize,
        refresh: Option<String>,
        id_token: Option<String>,
    ) -> HttpResponse {
        let access = self.next("opaque-access");
        let exp = self.world.now_ms() + self.access_ttl_s as f64 * 1000.0;
        self.access.insert(access.clone(), (grant, exp));
        let mut body = json!({"access_token": access, "token_type": "Bearer",
            "expires_in": self.access_ttl_s, "scope": "openid profile offline_access"});
        if let Some(r) = refresh {
            self.refresh.insert(r.clone(), (grant, false));
            body["refresh_token"] = json!(r);
        }
        if let Some(t) = id_token {
            body["id_token"] = json!(t);
        }
        json_answer(200, body)
    }

    fn revoke(&mut self, grant: usize, why: &'static str) {
        let g = &mut self.grants[grant];
        if !g.revoked {
            g.revoked = true;
            g.why = why;
        }
    }

    pub fn handle(&mut self, req: &HttpRequest) -> HttpResponse {
        let body = req.body.clone().unwrap_or_default();
        match path_of(&req.url) {
            "/token" => {
                let answer = self.token(&body);
                if answer.status == 400 {
                    self.invalid_grant += 1;
                }
                answer
            }
            "/token/revocation" => {
                let token = query_value(&body, "token").unwrap_or_default();
                if let Some((g, _)) = self.refresh.get(&token).copied() {
                    self.revoke(g, "revoked");
                    self.revocations += 1;
                }
                HttpResponse {
                    status: 200,
                    headers: Vec::new(),
                    body: String::new(),
                }
            }
            p if p.starts_with("/api/test/") => {
                let bearer = req
                    .header("authorization")
                    .and_then(|h| h.strip_prefix("Bearer "));
                let live = bearer
                    .and_then(|t| self.access.get(t))
                    .is_some_and(|(g, exp)| !self.grants[*g].revoked && *exp > self.world.now_ms());
                if live || p == "/api/test/all" {
                    HttpResponse {
                        status: 200,
                        headers: vec![("content-type".into(), "text/plain".into())],
                        body: "User Content.".into(),
                    }
                } else {
                    json_answer(401, json!({"message": "Unauthorized!"}))
                }
            }
            other => json_answer(404, json!({"error": format!("no route {other}")})),
        }
    }

    fn token(&mut self, body: &str) -> HttpResponse {
        if query_value(body, "client_id").as_deref() != Some(CLIENT_ID) {
            return json_answer(401, json!({"error": "invalid_client"}));
        }
        match query_value(body, "grant_type").as_deref() {
            Some("authorization_code") => {
                let Some(code) = query_value(body, "code").and_then(|c| self.codes.remove(&c))
                else {
                    return invalid_grant("unknown or used code");
                };
                let verifier = query_value(body, "code_verifier").unwrap_or_default();
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if challenge != code.challenge {
                    return invalid_grant("PKCE verification failed");
                }
                if query_value(body, "redirect_uri").as_deref() != Some(&code.redirect_uri) {
                    return invalid_grant("redirect_uri mismatch");
                }
                let refresh = self.next("refresh");
                let id = self.id_token(code.grant, Some(&code.nonce));
                self.tokens(code.grant, Some(refresh), Some(id))
            }
            Some("refresh_token") => {
                let presented = query_value(body, "refresh_token").unwrap_or_default();
                let Some((grant, used)) = self.refresh.get(&presented).copied() else {
                    return invalid_grant("unknown refresh token");
                };
                if self.grants[grant].revoked {
                    return invalid_grant(self.grants[grant].why);
                }
                if used {
                    // No grace: a second use of a rotated token ends the grant, its newest
                    // tokens included.
                    self.revoke(grant, "a used refresh token came back");
                    self.revoked_by_reuse += 1;
                    return invalid_grant("refresh token already used");
                }
                self.refreshed += 1;
                let refresh = if self.rotate {
                    self.refresh.insert(presented, (grant, true));
                    Some(self.next("refresh"))
                } else {
                    None
                };
                let id = self.id_token_on_refresh.then(|| {
                    if let Some(sub) = self.refreshed_sub.clone() {
                        self.grants[grant].sub = sub;
                    }
                    let nonce = self
                        .refreshed_nonce
                        .clone()
                        .unwrap_or_else(|| self.grants[grant].nonce.clone());
                    self.id_token(grant, Some(&nonce))
                });
                self.tokens(grant, refresh, id)
            }
            _ => json_answer(400, json!({"error": "unsupported_grant_type"})),
        }
    }

    /// Refreshes `token` directly (as a replay from anywhere would): the status.
    pub fn replay(&mut self, token: &str) -> u16 {
        let body = format!("grant_type=refresh_token&refresh_token={token}&client_id={CLIENT_ID}");
        let status = self.token(&body).status;
        if status == 400 {
            self.invalid_grant += 1;
        }
        status
    }
}
