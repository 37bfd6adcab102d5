//! Sign-in and sign-up: the two calls that go without a session, and keep the server's words
//! when they fail (a 401/404 there means "wrong password" or "unknown user", not "session over").

use std::rc::Rc;

use api_types::{paths, MessageResponse, SigninRequest, SigninResponse, SignupRequest};

use super::super::claims::read_claims;
use super::super::error::{error_message, map_status, ClientError};
use super::super::persist::id_string;
use super::super::policy::TokenTiming;
use super::super::ports::{Area, HttpResponse};
use super::super::time::parse_http_date;
use super::super::types::UserInfo;
use super::persist::stored_generation;
use super::state::{Got, Obtained};
use super::{Engine, Inner};

fn auth_error(resp: &HttpResponse) -> ClientError {
    match resp.status {
        400..=499 if resp.status != 429 => ClientError::Http {
            status: resp.status,
            message: error_message(&resp.body),
        },
        _ => map_status(resp),
    }
}

fn decode(e: impl std::fmt::Display) -> ClientError {
    ClientError::Decode(e.to_string())
}

impl Engine {
    /// Signs in. `remember` chooses persistent (localStorage) or tab-only (sessionStorage)
    /// storage in compat mode, and in cookie mode whether the session outlives the browser.
    pub async fn login(
        &self,
        username: String,
        password: String,
        remember: bool,
    ) -> Result<(), ClientError> {
        let inner = self.0.clone();
        let body = serde_json::to_string(&SigninRequest { username, password }).map_err(decode)?;
        // Not remembered: the HttpOnly cookie must not outlive the browser session.
        let req = inner.token_post(paths::SIGNIN, body, !remember);
        let sent_at = inner.now();
        let resp = inner.ports.transport.send(req).await?;
        let received_at = inner.now();
        if !(200..300).contains(&resp.status) {
            return Err(auth_error(&resp));
        }
        let signin: SigninResponse = serde_json::from_str(&resp.body).map_err(decode)?;
        if !inner.cookie_mode() && signin.refresh_token.is_none() {
            return Err(ClientError::Decode(
                "sign-in answer carries no refresh token (is the server in cookie mode?)".into(),
            ));
        }
        let facts = read_claims(&signin.access_token).map_err(decode)?;
        let timing = TokenTiming {
            sent_at_ms: sent_at,
            received_at_ms: received_at,
            date_header_ms: resp.header("date").and_then(parse_http_date),
            iat_ms: facts.iat_ms,
            exp_ms: facts.exp_ms,
            expires_in_s: signin.expires_in,
            refresh_expires_in_s: signin.refresh_expires_in,
        };
        let roles = if signin.roles.is_empty() {
            facts.custom.roles.clone()
        } else {
            signin.roles.clone()
        };
        let obtained = Obtained {
            user: UserInfo {
                id: id_string(&signin.id),
                username: signin.username,
                email: signin.email,
                roles,
            },
            access: signin.access_token,
            refresh: signin.refresh_token,
            id_token: None,
            timing,
            area: (!inner.cookie_mode()).then_some(if remember {
                Area::Local
            } else {
                Area::Session
            }),
            remember,
            got: Got::SignIn,
            bff: None,
        };
        inner.install_signed_in(obtained);
        Ok(())
    }

    /// Registers a user; `Ok` carries the server's message.
    pub async fn register(&self, req: SignupRequest) -> Result<String, ClientError> {
        let inner = self.0.clone();
        let body = serde_json::to_string(&req).map_err(decode)?;
        let resp = inner
            .ports
            .transport
            .send(inner.post(paths::SIGNUP, body))
            .await?;
        if !(200..300).contains(&resp.status) {
            return Err(auth_error(&resp));
        }
        Ok(serde_json::from_str::<MessageResponse>(&resp.body)
            .map(|m| m.message)
            .unwrap_or_else(|_| error_message(&resp.body)))
    }
}

impl Inner {
    /// Installs a session a sign-in just obtained (password, OpenID callback, BFF) and carries
    /// out what that means; anything still in flight belongs to the previous session.
    pub(super) fn install_signed_in(self: &Rc<Self>, obtained: Obtained) {
        let stored = stored_generation(&*self.ports.storage);
        let effects = {
            let mut st = self.st.borrow_mut();
            st.epoch += 1;
            st.install(obtained, stored).1
        };
        self.run(effects);
    }
}
