//! The wire contract between the yew-session app and an auth API.
//!
//! It is the contract of the Vue/Vuex refresh-token tutorial's backend (`/api/auth/signin|signup|
//! refreshtoken`, `/api/test/all|user|mod|admin`, camelCase JSON, `message` on errors), extended
//! in a backwards-compatible way by our own server: `tokenType`, `expiresIn`, `refreshExpiresIn`,
//! cookie transport, sign-out and a sessions API. Every field the tutorial's backend does not send
//! is optional here, so the client can parse both.

use serde::{Deserialize, Serialize};

/// Paths of the API, relative to the API base URL.
pub mod paths {
    pub const SIGNUP: &str = "/api/auth/signup";
    pub const SIGNIN: &str = "/api/auth/signin";
    pub const REFRESH: &str = "/api/auth/refreshtoken";
    pub const SIGNOUT: &str = "/api/auth/signout";
    /// `GET` lists the caller's sessions; `DELETE {SESSIONS}/:id` ends one.
    pub const SESSIONS: &str = "/api/auth/sessions";
    /// `POST` [`super::ChangePasswordRequest`]: a new password; the caller's other sessions end.
    pub const PASSWORD: &str = "/api/auth/password";
    /// `POST` (no body): ends every session of the caller, the current one included.
    pub const SIGNOUT_ALL: &str = "/api/auth/signout-all";
    /// `POST` (no body): ends every session of the caller except the current one.
    pub const SIGNOUT_OTHERS: &str = "/api/auth/signout-others";
    /// `DELETE` [`super::DeleteAccountRequest`]: deletes the caller's account.
    pub const ACCOUNT: &str = "/api/auth/account";
    pub const TEST_ALL: &str = "/api/test/all";
    pub const TEST_USER: &str = "/api/test/user";
    pub const TEST_MOD: &str = "/api/test/mod";
    pub const TEST_ADMIN: &str = "/api/test/admin";
    pub const METRICS: &str = "/metrics";
    /// Backend for frontend: `GET ?return=/path` starts the sign-in at the upstream provider.
    pub const BFF_LOGIN: &str = "/api/bff/login";
    /// Backend for frontend: `GET` the server-side session (never a token).
    pub const BFF_SESSION: &str = "/api/bff/session";
    /// Backend for frontend: `POST` (`?everywhere=1`: every session of the user) ends it.
    pub const BFF_LOGOUT: &str = "/api/bff/logout";
    /// Backend for frontend, password upstreams: `POST {"username","password"}`.
    pub const BFF_SIGNIN: &str = "/api/bff/signin";
}

/// Header names and values that are part of the contract.
pub mod headers {
    /// The tutorial's access-token header.
    pub const ACCESS_TOKEN: &str = "x-access-token";
    /// Sent on signin to ask for the cookie transport, and required on refresh/signout in cookie
    /// mode (a custom header cannot be sent cross-site without a CORS preflight: the CSRF guard).
    pub const REFRESH_TRANSPORT: &str = "x-refresh-transport";
    pub const REFRESH_TRANSPORT_COOKIE: &str = "cookie";
    /// Cookie mode, on signin and refresh: `session` asks for a browser-session cookie (no
    /// Max-Age) because the user did not ask to be remembered; without it the cookie lasts as
    /// long as the refresh-token family.
    pub const REFRESH_PERSIST: &str = "x-refresh-persist";
    pub const REFRESH_PERSIST_SESSION: &str = "session";
    /// Name of the HttpOnly refresh-token cookie in cookie mode.
    pub const REFRESH_COOKIE: &str = "__Host-refresh";
    /// Backend for frontend: the header every request of the app carries (the server requires
    /// it on every state-changing one; no other origin can send it without a preflight).
    pub const CSRF: &str = "x-csrf";
    pub const CSRF_VALUE: &str = "1";
}

/// The three roles of the tutorial, as the API spells them.
pub mod roles {
    pub const USER: &str = "ROLE_USER";
    pub const MODERATOR: &str = "ROLE_MODERATOR";
    pub const ADMIN: &str = "ROLE_ADMIN";
}

/// Exact messages of the tutorial contract.
pub mod messages {
    pub const REGISTERED: &str = "User registered successfully!";
    pub const USERNAME_TAKEN: &str = "Failed! Username is already in use!";
    pub const EMAIL_TAKEN: &str = "Failed! Email is already in use!";
    pub const REFRESH_REQUIRED: &str = "Refresh Token is required!";
    pub const REFRESH_NOT_IN_DB: &str = "Refresh token is not in database!";
    pub const REFRESH_EXPIRED: &str = "Refresh token was expired. Please make a new signin request";
    pub const NO_TOKEN: &str = "No token provided!";
    pub const ACCESS_EXPIRED: &str = "Unauthorized! Access Token was expired!";
    pub const UNAUTHORIZED: &str = "Unauthorized!";
    pub const REQUIRE_MODERATOR: &str = "Require Moderator Role!";
    pub const REQUIRE_ADMIN: &str = "Require Admin Role!";
    pub const PUBLIC_CONTENT: &str = "Public Content.";
    pub const USER_CONTENT: &str = "User Content.";
    pub const MODERATOR_CONTENT: &str = "Moderator Content.";
    pub const ADMIN_CONTENT: &str = "Admin Content.";
}

/// `POST /api/auth/signup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// `POST /api/auth/signin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigninRequest {
    pub username: String,
    pub password: String,
}

/// `POST /api/auth/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `DELETE /api/auth/account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountRequest {
    pub current_password: String,
}

/// Answer to a successful sign-in.
///
/// `refresh_token` is absent in cookie mode (the token then lives only in the HttpOnly cookie).
/// `token_type`, `expires_in` and `refresh_expires_in` are absent from the tutorial's backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigninResponse {
    pub id: serde_json::Value,
    pub username: String,
    pub email: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Access-token lifetime in seconds, counted from the moment the server answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Seconds until the refresh-token family ends (absolute lifetime), from the same moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}

/// `POST /api/auth/refreshtoken` (body transport). In cookie mode the body may be `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Answer to a successful refresh. The tutorial's backend repeats the same refresh token;
/// ours returns the rotated one (body mode) or none (cookie mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshResponse {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}

/// `POST /api/auth/signout` (body transport). In cookie mode the body may be `{}`.
pub type SignoutRequest = RefreshRequest;

/// Every error, and the plain successes of signup and signout. `code` is ours (the tutorial
/// sends only `message`): a machine-readable reason on refusals, one of [`codes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResponse {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl MessageResponse {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
        }
    }

    /// A refusal with its machine-readable reason.
    pub fn with_code(message: impl Into<String>, code: &str) -> Self {
        Self {
            message: message.into(),
            code: Some(code.to_owned()),
        }
    }
}

/// Machine-readable reasons (`code`) of refusals; the `message` keeps the tutorial's text.
pub mod codes {
    /// The refresh request carried no refresh token.
    pub const REFRESH_REQUIRED: &str = "refresh_token_required";
    /// No such refresh token (never issued, mistyped, or of the other transport).
    pub const REFRESH_UNKNOWN: &str = "refresh_token_unknown";
    /// The session is past its absolute lifetime or its idle timeout.
    pub const REFRESH_EXPIRED: &str = "refresh_token_expired";
    /// A rotated refresh token came back after its successor had been used: the session was
    /// ended to protect the account (now, or earlier for the same reason).
    pub const REFRESH_REUSED: &str = "refresh_token_reused";
    /// The session was ended: signed out, ended from the sessions list, password changed, or
    /// account deleted. Also on an access token of such a session.
    pub const SESSION_ENDED: &str = "session_ended";
    /// Password change or account deletion: the current password given is not the account's.
    pub const WRONG_PASSWORD: &str = "wrong_password";
    /// Password change: the new password breaks the sign-up rules (`api_types::validate`).
    pub const INVALID_PASSWORD: &str = "invalid_password";
    /// Password change: the new password is the current one.
    pub const PASSWORD_UNCHANGED: &str = "password_unchanged";
    /// Backend for frontend: the request carries no session cookie.
    pub const BFF_NO_SESSION: &str = "bff_no_session";
    /// Backend for frontend: the cookie names a session that has ended (signed out elsewhere,
    /// the provider refused its refresh, its absolute end).
    pub const BFF_SESSION_ENDED: &str = "bff_session_ended";
    /// Backend for frontend: the provider could not be reached for a refresh (503, transient).
    pub const BFF_UPSTREAM_UNAVAILABLE: &str = "bff_upstream_unavailable";
    /// Backend for frontend, password upstreams: wrong username or password.
    pub const BFF_BAD_CREDENTIALS: &str = "bff_bad_credentials";
}

/// One refresh-token family of the caller, as listed by `GET /api/auth/sessions`.
/// Times are Unix seconds (server clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Opaque identifier, used in `DELETE /api/auth/sessions/:id`.
    pub id: String,
    /// A short description of the client (from its User-Agent).
    pub device: String,
    /// `"cookie"` or `"body"`.
    pub transport: String,
    pub created_at: i64,
    pub last_used_at: i64,
    /// End of the family's absolute lifetime.
    pub expires_at: i64,
    /// True for the session the request was made with (when the server can tell).
    #[serde(default)]
    pub current: bool,
}

/// `GET /api/auth/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionInfo>,
}

/// The kind of a token, carried in our access tokens' `kind` claim so that no other token
/// (present or future) can be presented as an access token.
pub const ACCESS_TOKEN_KIND: &str = "access";

/// Custom claims of our server's access tokens (the standard `exp`/`iat`/`nbf` are carried by
/// jwt-compact's `Claims` wrapper). The tutorial's backend sends only `{id, iat, exp}`: every
/// field here is optional when parsing on the client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The tutorial's user id claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Refresh-token family (session) the token was issued under; lets the server mark the
    /// caller's own session in the sessions list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_signin_response_without_our_extensions_parses() {
        let body = r#"{"id":1,"username":"u","email":"u@x.io","roles":["ROLE_USER"],
            "accessToken":"a.b.c","refreshToken":"0b9c6f1e-1f0e-4c55-9d1a-2d6e0c8a9b7f"}"#;
        let r: SigninResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.expires_in, None);
        assert_eq!(r.token_type, None);
        assert_eq!(
            r.refresh_token.as_deref(),
            Some("0b9c6f1e-1f0e-4c55-9d1a-2d6e0c8a9b7f")
        );
    }

    #[test]
    fn cookie_mode_signin_response_carries_no_refresh_token_field() {
        let r = SigninResponse {
            id: serde_json::json!(1),
            username: "u".into(),
            email: "u@x.io".into(),
            roles: vec![roles::USER.into()],
            access_token: "a.b.c".into(),
            refresh_token: None,
            token_type: Some("Bearer".into()),
            expires_in: Some(900),
            refresh_expires_in: Some(86400),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("refreshToken").is_none());
        assert_eq!(v["expiresIn"], 900);
        assert_eq!(v["tokenType"], "Bearer");
    }

    #[test]
    fn refresh_request_uses_the_tutorial_field_name() {
        let v = serde_json::to_value(RefreshRequest {
            refresh_token: Some("t".into()),
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"refreshToken": "t"}));
    }
}

/// Field rules of sign-up, shared so the app's inline validation and the server say the same.
pub mod validate {
    /// Which field failed and why, in words a person can act on.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FieldError {
        pub field: &'static str,
        pub message: String,
    }

    pub const USERNAME_MIN: usize = 3;
    pub const USERNAME_MAX: usize = 20;
    pub const PASSWORD_MIN: usize = 8;
    pub const PASSWORD_MAX: usize = 128;
    pub const EMAIL_MAX: usize = 254;
    pub const EMAIL_LOCAL_MAX: usize = 64;

    /// 3 to 20 characters of `A-Z a-z 0-9 _ . -`.
    pub fn username(value: &str) -> Result<(), FieldError> {
        let err = |message: String| {
            Err(FieldError {
                field: "username",
                message,
            })
        };
        let len = value.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return err(format!(
                "The username must be between {USERNAME_MIN} and {USERNAME_MAX} characters."
            ));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return err("The username may only contain letters, digits, '_', '.' and '-'.".into());
        }
        Ok(())
    }

    /// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces.
    pub fn email(value: &str) -> Result<(), FieldError> {
        let bad = || {
            Err(FieldError {
                field: "email",
                message: "This is not a valid email address.".into(),
            })
        };
        if value.is_empty()
            || value.len() > EMAIL_MAX
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return bad();
        }
        let Some((local, domain)) = value.split_once('@') else {
            return bad();
        };
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if local.is_empty()
            || local.len() > EMAIL_LOCAL_MAX
            || domain.contains('@')
            || !domain.contains('.')
            || !labels_ok
        {
            return bad();
        }
        Ok(())
    }

    /// 8 to 128 characters (counted as characters, not bytes). Checked before any hashing.
    pub fn password(value: &str) -> Result<(), FieldError> {
        let len = value.chars().count();
        let message = if len < PASSWORD_MIN {
            format!("The password must be at least {PASSWORD_MIN} characters long.")
        } else if len > PASSWORD_MAX {
            format!("The password must be at most {PASSWORD_MAX} characters long.")
        } else {
            return Ok(());
        };
        Err(FieldError {
            field: "password",
            message,
        })
    }

    /// Every field error of a sign-up request, in form order.
    pub fn signup(req: &super::SignupRequest) -> Vec<FieldError> {
        [
            username(&req.username),
            email(&req.email),
            password(&req.password),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn usernames_follow_length_and_charset_rules() {
            for ok in ["abc", "user_1", "a.b-c", "x".repeat(20).as_str()] {
                assert!(username(ok).is_ok(), "{ok}");
            }
            for bad in ["ab", "", "has space", "émile", "a/b", &"x".repeat(21)] {
                assert_eq!(username(bad).unwrap_err().field, "username", "{bad}");
            }
        }

        #[test]
        fn emails_must_be_plausible() {
            for ok in ["a@b.io", "first.last+tag@sub.example.org"] {
                assert!(email(ok).is_ok(), "{ok}");
            }
            let long_local = format!("{}@b.io", "x".repeat(65));
            for bad in [
                "",
                "a",
                "a@b",
                "@b.io",
                "a@@b.io",
                "a b@c.io",
                "a@-b.io",
                "a@b..io",
                "a\u{7}@b.io",
                &long_local,
            ] {
                assert!(email(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn passwords_are_counted_in_characters() {
            assert!(password("12345678").is_ok());
            assert!(password("1234567").is_err());
            assert!(password(&"é".repeat(128)).is_ok());
            assert!(password(&"é".repeat(129)).is_err());
        }

        #[test]
        fn signup_lists_every_failing_field_in_order() {
            let req = super::super::SignupRequest {
                username: "a".into(),
                email: "nope".into(),
                password: "short".into(),
                roles: None,
            };
            let fields: Vec<_> = signup(&req).into_iter().map(|e| e.field).collect();
            assert_eq!(fields, ["username", "email", "password"]);
        }
    }
}
