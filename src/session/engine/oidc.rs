//! OpenID Connect in the engine: the sign-in round trip (authorization code + PKCE), the refresh
//! with the `refresh_token` grant, the revocation of the refresh token and the end-session URL.
//! The protocol's pure parts are in `session::oidc`. The refresh goes through the same single
//! flight, cross-tab lock and adoption as every other refresh (`super::refresh`): that is what
//! keeps a rotated refresh token from ever being presented twice, which a provider without a
//! grace period (oidc-provider, Logto) punishes by revoking the whole grant.
//!
//! The provider's tokens live like compat mode's: in memory, and in web storage as the
//! session's record (localStorage with "remember me", else this tab's sessionStorage, shared
//! with new tabs by message). Script on the page can read them there: the README says what that
//! trades; keeping them out of the browser is the backend-for-frontend mode's job.

use std::rc::Rc;

use futures::FutureExt;

use super::super::error::{error_message, FailureKind};
use super::super::oidc::{self, Callback, Endpoints, Expect, IdTokenRefused, Pending, Secrets};
use super::super::persist::keys;
use super::super::policy::{self, TokenTiming};
use super::super::ports::{Area, HttpRequest, Method};
use super::super::time::parse_http_date;
use super::refresh::Fresh;
use super::state::{Got, Obtained, Token};
use super::{Engine, Inner};

/// A form POST to one of the provider's endpoints: no cookies (the provider's session cookie
/// has nothing to do with the token endpoint), and a CORS-safelisted content type, so the
/// browser sends it without a preflight.
fn form_post(url: &str, body: String) -> HttpRequest {
    let mut req = HttpRequest::new(Method::Post, url);
    req.with_credentials = false;
    req.headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    req.body = Some(body);
    req
}

impl Inner {
    fn endpoints(&self) -> Result<&Endpoints, String> {
        self.cfg.endpoints.as_ref().ok_or_else(|| {
            let why = self.cfg.discovery_error.as_deref();
            format!(
                "The sign-in provider {} is not available: {}",
                self.cfg.issuer,
                why.unwrap_or("its configuration was not loaded")
            )
        })
    }

    /// The `refresh_token` grant. A 200 is always taken: the provider has rotated the refresh
    /// token already, so even an ID token that fails its checks must not make the engine retry
    /// with the old one (that would revoke the grant); such an ID token is dropped, and only one
    /// that names another user ends the session.
    pub(super) async fn send_oidc_refresh(
        self: &Rc<Self>,
    ) -> Result<(Fresh, TokenTiming), FailureKind> {
        // Not discovered (provider unreachable at load): like no answer, retried later.
        let Some(token_url) = self.cfg.endpoints.as_ref().map(|e| e.token.clone()) else {
            return Err(FailureKind::Network);
        };
        let refresh_token = self.held_refresh_token()?;
        let req = form_post(
            &token_url,
            oidc::refresh_body(&refresh_token, &self.cfg.client_id),
        );
        let sent = self.send_refresh_request(req).await?;
        let (sub, sign_in_nonce, offset) = {
            let st = self.st.borrow();
            let token = st.token();
            let nonce = token
                .and_then(|t| t.id_token.as_deref())
                .and_then(|raw| oidc::read_id_token(raw).ok())
                .and_then(|t| t.claims.get("nonce")?.as_str().map(str::to_owned));
            (token.map(|t| t.user.id.clone()), nonce, st.clock_offset)
        };
        let provider_now = sent.date.unwrap_or(sent.received_at + offset);
        let answer = oidc::parse_token_answer(&sent.resp.body).map_err(|_| FailureKind::Decode)?;
        let mut fresh = Fresh {
            access: answer.access_token,
            refresh: answer.refresh_token,
            id_token: None,
            roles: Vec::new(),
            user: None,
            bff: None,
        };
        let mut iat_ms = None;
        if let Some(id) = answer
            .id_token
            .as_deref()
            .and_then(|raw| oidc::read_id_token(raw).ok().map(|t| (raw, t)))
        {
            let (raw, t) = id;
            let expect = Expect {
                issuer: &self.cfg.issuer,
                client_id: &self.cfg.client_id,
                nonce: None,
                sign_in_nonce: sign_in_nonce.as_deref(),
                sub: sub.as_deref(),
            };
            match oidc::check_id_token(&t, &expect, provider_now) {
                Ok(()) => {
                    fresh.roles = oidc::user_of(&t, self.cfg.roles_claim.as_deref()).roles;
                    fresh.id_token = Some(raw.to_owned());
                    iat_ms = t.iat_ms;
                }
                Err(why @ IdTokenRefused::OtherUser) => {
                    return Err(FailureKind::Rejected {
                        status: sent.resp.status,
                        message: why.to_string(),
                        code: Some("subject_changed".into()),
                    })
                }
                Err(IdTokenRefused::Claim(_)) => {}
            }
        }
        let timing = TokenTiming {
            sent_at_ms: sent.sent_at,
            received_at_ms: sent.received_at,
            date_header_ms: sent.date,
            iat_ms,
            // Access tokens may be opaque: never parsed, the schedule is `expires_in`'s.
            exp_ms: None,
            expires_in_s: answer.expires_in,
            refresh_expires_in_s: answer.refresh_expires_in,
        };
        Ok((fresh, timing))
    }

    /// RFC 7009: the refresh token of the session that ended is revoked at the provider (when it
    /// advertises a revocation endpoint), so a copy of it is worthless. [`Engine::logout_at_provider`]
    /// waits for it before leaving the page.
    pub(super) fn revoke_at_provider(self: &Rc<Self>, previous: Option<&Token>) {
        let endpoint = self
            .cfg
            .endpoints
            .as_ref()
            .and_then(|e| e.revocation.clone());
        let (Some(endpoint), Some(refresh)) = (endpoint, previous.and_then(|t| t.refresh.clone()))
        else {
            return;
        };
        let req = form_post(
            &endpoint,
            oidc::revocation_body(&refresh, &self.cfg.client_id),
        );
        let send = self.ports.transport.send(req);
        let fut = async move {
            let _ = send.await;
        }
        .boxed_local()
        .shared();
        self.flight.borrow_mut().signout = Some(fut.clone());
        self.ports.spawner.spawn(Box::pin(fut));
    }
}

impl Engine {
    /// Starts a sign-in at the provider: keeps the round trip's secrets in this tab's
    /// sessionStorage (only until the callback) and returns the URL to send the browser to.
    /// `origin`: this page's origin; `return_to`: the app path to come back to (checked again
    /// on the way back: no open redirect).
    pub fn oidc_sign_in_url(
        &self,
        secrets: Secrets,
        origin: &str,
        return_to: &str,
        remember: bool,
    ) -> Result<String, String> {
        let inner = &self.0;
        let cfg = &inner.cfg;
        let endpoints = inner.endpoints()?;
        let redirect_uri = format!("{origin}{}", cfg.redirect_path);
        let request = oidc::Request {
            client_id: &cfg.client_id,
            redirect_uri: &redirect_uri,
            scopes: &cfg.scopes,
            audience: cfg.audience.as_deref(),
            resource: cfg.resource.as_deref(),
            prompt: cfg.prompt.as_deref(),
        };
        let url = oidc::authorize_url(&endpoints.authorization, &request, &secrets);
        let pending = Pending {
            state: secrets.state,
            verifier: secrets.verifier,
            nonce: secrets.nonce,
            redirect_uri,
            return_to: return_to.to_owned(),
            remember,
            started_at: inner.now(),
        };
        inner
            .ports
            .storage
            .set(Area::Session, keys::OIDC_PENDING, &pending.to_text());
        Ok(url)
    }

    /// Completes the sign-in on the redirect URI (`query`: its query string): the `state` must
    /// be this tab's, the code is exchanged with the PKCE verifier, the ID token's claims are
    /// checked, and the session starts here and in every open tab. Returns the app path to go
    /// back to; the error is a sentence for the page. The round trip's secrets are gone from
    /// storage afterwards, whatever the outcome.
    pub async fn oidc_complete(&self, query: &str) -> Result<String, String> {
        let inner = self.0.clone();
        let cfg = &inner.cfg;
        let storage = &*inner.ports.storage;
        let pending = storage.get(Area::Session, keys::OIDC_PENDING);
        storage.remove(Area::Session, keys::OIDC_PENDING);
        let pending = pending.as_deref().and_then(Pending::from_text);
        let again = "Please sign in again.";
        let (code, state, iss) = match oidc::parse_callback(query) {
            None => {
                return Err(format!(
                    "This page receives the sign-in provider's answer, and its address carries none. {again}"
                ))
            }
            Some(Callback::Error {
                error, description, ..
            }) => {
                let detail = description.map(|d| format!(": {d}")).unwrap_or_default();
                return Err(format!(
                    "The sign-in provider did not sign you in ({error}{detail})."
                ));
            }
            Some(Callback::Code { code, state, iss }) => (code, state, iss),
        };
        let Some(p) = pending else {
            return Err(format!(
                "No sign-in was started in this tab, or it was completed already. {again}"
            ));
        };
        if p.state != state {
            return Err(format!(
                "This answer does not belong to the sign-in started here (state mismatch). {again}"
            ));
        }
        if inner.now() - p.started_at > oidc::PENDING_MAX_AGE_MS {
            return Err(format!("The sign-in took too long. {again}"));
        }
        if iss.as_deref().is_some_and(|i| i != cfg.issuer) {
            return Err(format!(
                "This answer comes from another provider than {}. {again}",
                cfg.issuer
            ));
        }
        let endpoints = inner.endpoints()?;
        let req = form_post(
            &endpoints.token,
            oidc::code_exchange_body(&code, &p, &cfg.client_id),
        );
        let sent_at = inner.now();
        let resp = inner.ports.transport.send(req).await.map_err(|e| {
            format!(
                "The sign-in provider could not be reached to finish the sign-in ({e}). {again}"
            )
        })?;
        let received_at = inner.now();
        if !(200..300).contains(&resp.status) {
            return Err(format!(
                "The sign-in provider refused to finish the sign-in: {} (HTTP {}). {again}",
                error_message(&resp.body),
                resp.status
            ));
        }
        let answer = oidc::parse_token_answer(&resp.body)
            .map_err(|e| format!("The sign-in provider's answer is not usable: {e}."))?;
        let raw = answer.id_token.clone().ok_or(
            "The sign-in provider's answer has no ID token (is \"openid\" among the scopes?).",
        )?;
        let refresh = answer.refresh_token.clone().ok_or(
            "The sign-in provider gave no refresh token: the client must be allowed refresh tokens, and the scopes must include offline_access.",
        )?;
        let id = oidc::read_id_token(&raw)?;
        let timing = TokenTiming {
            sent_at_ms: sent_at,
            received_at_ms: received_at,
            date_header_ms: resp.header("date").and_then(parse_http_date),
            iat_ms: id.iat_ms,
            exp_ms: None,
            expires_in_s: answer.expires_in,
            refresh_expires_in_s: answer.refresh_expires_in,
        };
        let offset = policy::clock_offset_ms(&timing, inner.st.borrow().clock_offset);
        let expect = Expect {
            issuer: &cfg.issuer,
            client_id: &cfg.client_id,
            nonce: Some(&p.nonce),
            sign_in_nonce: None,
            sub: None,
        };
        oidc::check_id_token(&id, &expect, received_at + offset)
            .map_err(|why| format!("The sign-in was refused: {why}. {again}"))?;
        let obtained = Obtained {
            access: answer.access_token,
            refresh: Some(refresh),
            id_token: Some(raw),
            user: oidc::user_of(&id, cfg.roles_claim.as_deref()),
            timing,
            area: Some(if p.remember {
                Area::Local
            } else {
                Area::Session
            }),
            remember: p.remember,
            got: Got::SignIn,
            bff: None,
        };
        inner.install_signed_in(obtained);
        Ok(p.return_to)
    }

    /// Signs out like [`Engine::logout`] (every tab follows), waits for the revocation of the
    /// refresh token at the provider (bounded by the transport's deadline) and returns the
    /// provider's end-session URL to send the browser to (RP-initiated logout, which ends the
    /// provider's own session too), or `None` when the provider has no end-session endpoint
    /// (then only the app's session ends) or the backend is not OpenID Connect.
    /// Backend for frontend: [`Engine::bff_logout`] (`everywhere`), whose server names the URL.
    pub async fn logout_at_provider(&self, origin: &str, everywhere: bool) -> Option<String> {
        if self.0.cfg.bff() {
            return self.bff_logout(everywhere).await;
        }
        let inner = self.0.clone();
        let id_token = inner.st.borrow().token().and_then(|t| t.id_token.clone());
        self.logout();
        let revoking = inner.flight.borrow_mut().signout.take();
        if let Some(r) = revoking {
            r.await;
        }
        let cfg = &inner.cfg;
        let endpoint = cfg.endpoints.as_ref()?.end_session.as_deref()?;
        Some(oidc::end_session_url(
            endpoint,
            id_token.as_deref(),
            &format!("{origin}{}", cfg.post_logout_redirect_path),
            &cfg.client_id,
        ))
    }
}
