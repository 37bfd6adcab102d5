//! A backend with the tutorial's contract as the BFF's upstream (`--upstream-tutorial URL`; the
//! contract as measured: ../shared/TUTORIAL-BACKEND.md), as in the Next.js case the issue names:
//! the browser signs in with a password through this server, which keeps the backend's tokens
//! and the browser only a session cookie.
//!
//! - Sign-in: `POST URL/api/auth/signin {username, password}` -> `{id, username, email, roles,
//!   accessToken, refreshToken}`; 401 (wrong password) and 404 (unknown user) are both "invalid
//!   username or password" here, so the BFF does not tell which accounts exist.
//! - Refresh: `POST URL/api/auth/refreshtoken {refreshToken}` -> `{accessToken, refreshToken}`
//!   (the same refresh token: it never rotates); 403 (missing, unknown, expired) ends the session.
//! - No `expiresIn`: the access token's lifetime is read from its own `exp` and `iat` (not
//!   verified: only a schedule for the next refresh; the backend checks its tokens, and a 401 from
//!   its API still makes one refresh and one retry).
//! - No sign-out endpoint: a logout ends the BFF session and forgets the tokens (the backend's
//!   refresh token lives on there until it expires — its own limit, said in the README).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use url::Url;

use super::store::BffUser;
use super::upstream::{TokenAnswer, TokenError};

/// The backend.
#[derive(Debug, Clone)]
pub struct Tutorial {
    base: Url,
    http: reqwest::Client,
}

/// Why a password sign-in gave no session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong password or unknown user.
    #[error("invalid username or password")]
    BadCredentials,
    /// Network failure, timeout, 5xx, 429 or an unreadable answer: try again later.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Any other answer (a 400, say): logged.
    #[error("refused by the backend ({0}): {1}")]
    Rejected(u16, String),
}

/// The lifetime (s) the token's own `exp` and `iat` give, when it is a JWT that has both.
fn jwt_lifetime_s(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let (exp, iat) = (claims["exp"].as_i64()?, claims["iat"].as_i64()?);
    (exp > iat).then_some(exp - iat)
}

fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(120).collect())
}

impl Tutorial {
    /// The backend at `base` (no trailing slash), spoken to with `http`.
    pub fn new(base: Url, http: reqwest::Client) -> Self {
        Self { base, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    async fn post(&self, path: &str, body: Value) -> Result<(u16, String), String> {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.map_err(|e| e.to_string())?))
    }

    /// Signs in: the user and the backend's tokens.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(BffUser, TokenAnswer), SignInError> {
        let (status, body) = self
            .post(
                "/api/auth/signin",
                json!({"username": username, "password": password}),
            )
            .await
            .map_err(SignInError::Unavailable)?;
        match status {
            200 => {}
            401 | 404 => return Err(SignInError::BadCredentials),
            429 | 500..=599 => {
                return Err(SignInError::Unavailable(format!(
                    "HTTP {status} {}",
                    message_of(&body)
                )))
            }
            _ => return Err(SignInError::Rejected(status, message_of(&body))),
        }
        let unreadable = |what: &str| SignInError::Unavailable(format!("sign-in answer: {what}"));
        let v: Value = serde_json::from_str(&body).map_err(|_| unreadable("not JSON"))?;
        let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let access_token = text("accessToken").ok_or_else(|| unreadable("no accessToken"))?;
        let refresh_token = text("refreshToken").ok_or_else(|| unreadable("no refreshToken"))?;
        let sub = match &v["id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => return Err(unreadable("no id")),
        };
        let user = BffUser {
            sub,
            name: text("username"),
            email: text("email"),
            roles: v["roles"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let answer = TokenAnswer {
            expires_in: jwt_lifetime_s(&access_token),
            access_token,
            refresh_token: Some(refresh_token),
            id_token: None,
        };
        Ok((user, answer))
    }

    /// A refresh (sent once). 403 is the backend's refusal of the refresh token: the session
    /// is over.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenAnswer, TokenError> {
        let (status, body) = self
            .post(
                "/api/auth/refreshtoken",
                json!({ "refreshToken": refresh_token }),
            )
            .await
            .map_err(TokenError::Transient)?;
        match status {
            200 => {}
            403 => return Err(TokenError::Refused(message_of(&body))),
            429 | 500..=599 => {
                return Err(TokenError::Transient(format!(
                    "HTTP {status} {}",
                    message_of(&body)
                )))
            }
            _ => return Err(TokenError::Rejected(status, message_of(&body))),
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|_| TokenError::Transient("refresh answer is not JSON".into()))?;
        let access_token = v["accessToken"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenError::Transient("refresh answer has no accessToken".into()))?
            .to_owned();
        Ok(TokenAnswer {
            expires_in: jwt_lifetime_s(&access_token),
            access_token,
            refresh_token: v["refreshToken"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            id_token: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifetime_comes_from_the_tokens_own_exp_and_iat() {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let t = format!(
            "{}.{}.sig",
            enc(json!({"alg": "HS256"})),
            enc(json!({"id": 1, "iat": 1000, "exp": 1060}))
        );
        assert_eq!(jwt_lifetime_s(&t), Some(60));
        let no_exp = format!("h.{}.s", enc(json!({"id": 1, "iat": 1000})));
        assert_eq!(jwt_lifetime_s(&no_exp), None);
        let backwards = format!("h.{}.s", enc(json!({"iat": 1000, "exp": 900})));
        assert_eq!(jwt_lifetime_s(&backwards), None);
        assert_eq!(jwt_lifetime_s("opaque-token"), None);
    }
}
