//! Extractors and request helpers: the access-token extractor [`AuthUser`], the JSON body
//! extractor [`ApiJson`] (rejections become our JSON errors), origin and cookie checks.

use api_types::{codes, headers as h, messages};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::keys::AccessTokenError;
use crate::state::{AppState, Settings};

/// JSON body whose rejections (syntax, shape, content type, size) are answered as [`ApiError`].
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// The caller, authenticated by a valid access token of an existing user.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User id.
    pub id: i64,
    /// Current roles (from the database, so a demotion applies at once).
    pub roles: Vec<String>,
    /// The family (session) the token was issued under.
    pub sid: Option<String>,
}

impl AuthUser {
    /// Whether the user has `role`.
    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Finds the access token: `x-access-token` or `Authorization: Bearer`, never the query string.
/// `Ok(None)`: no token at all. Ambiguous or malformed headers are an error.
fn access_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let bad = ApiError::Unauthorized(messages::UNAUTHORIZED);
    let mut found: Option<String> = None;
    let mut xs = headers.get_all(h::ACCESS_TOKEN).iter();
    if let Some(v) = xs.next() {
        if xs.next().is_some() {
            return Err(bad);
        }
        found = Some(
            v.to_str()
                .map_err(|_| ApiError::Unauthorized(messages::UNAUTHORIZED))?
                .trim()
                .to_owned(),
        );
    }
    let mut auths = headers.get_all(AUTHORIZATION).iter();
    if let Some(v) = auths.next() {
        if auths.next().is_some() {
            return Err(bad);
        }
        let v = v
            .to_str()
            .map_err(|_| ApiError::Unauthorized(messages::UNAUTHORIZED))?
            .trim();
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(bad);
        }
        let t = rest.trim().to_owned();
        match &found {
            Some(x) if *x != t => return Err(bad),
            _ => found = Some(t),
        }
    }
    match found {
        Some(t) if t.is_empty() => Err(bad),
        other => Ok(other),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = access_token(&parts.headers)?
            .ok_or_else(|| ApiError::Forbidden(messages::NO_TOKEN.into()))?;
        let v = state
            .keys()
            .verify_access(&token, state.now_ms())
            .map_err(|e| match e {
                AccessTokenError::Expired => ApiError::Unauthorized(messages::ACCESS_EXPIRED),
                AccessTokenError::Invalid(why) => {
                    tracing::debug!(why, "access token rejected");
                    ApiError::Unauthorized(messages::UNAUTHORIZED)
                }
            })?;
        // A deleted user's tokens die with the user; a password change ends older tokens; an
        // ended session (signed out, ended from the list, revoked for reuse) ends its tokens.
        let ended = || {
            ApiError::Refused(
                StatusCode::UNAUTHORIZED,
                messages::UNAUTHORIZED,
                codes::SESSION_ENDED,
            )
        };
        let sid = v.sid.as_deref().ok_or_else(ended)?;
        // From this instance's cache while it is in step with the database (src/db/cache.rs),
        // else one query.
        let subject = state
            .db()
            .user_and_session(v.user_id, sid, state.now_ms())
            .await?
            .ok_or_else(ended)?;
        if !subject.live || v.issued_at < subject.password_changed_at / 1000 {
            return Err(ended());
        }
        Ok(AuthUser {
            id: v.user_id,
            roles: subject.roles,
            sid: v.sid,
        })
    }
}

/// The client's address as the throttle counts it: the peer address (the server runs with
/// connect info; oneshot tests insert it; without it "unknown"), or, when the peer is one of
/// `--trusted-proxy`, what [`forwarded_client`] finds in X-Forwarded-For.
pub fn client_ip(
    parts_ext: &axum::http::Extensions,
    headers: &HeaderMap,
    settings: &Settings,
) -> String {
    let peer = parts_ext
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    match peer {
        Some(peer) => forwarded_client(peer, headers, &settings.trusted_proxies).to_string(),
        None => "unknown".to_owned(),
    }
}

/// The client behind `peer`: the peer itself unless it is a trusted proxy; then the right-most
/// X-Forwarded-For entry (all such headers, in order) that is not a trusted proxy. Entries left
/// of it were written by the client and are never believed. An entry that is not an address
/// (`IP`, `IPv4:port` and `[IPv6]:port` are) stops the walk at the trusted hop that passed it
/// on; when every entry is a trusted proxy, the left-most one is the client.
pub fn forwarded_client(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let parse = |entry: &str| {
        let entry = entry.trim();
        entry
            .parse::<std::net::IpAddr>()
            .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|a| a.ip()))
            .ok()
            .map(|ip| ip.to_canonical())
    };
    let entries: Vec<Option<std::net::IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').map(parse).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut hop = peer;
    for entry in entries.into_iter().rev() {
        match entry {
            Some(ip) if is_trusted(&ip) => hop = ip,
            Some(ip) => return ip,
            None => return hop,
        }
    }
    hop
}

/// True when there is no Origin header, or it is configured, or it is the server's own origin.
pub fn origin_allowed(headers: &HeaderMap, settings: &Settings) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if settings.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    match headers.get(HOST).and_then(|v| v.to_str().ok()) {
        Some(host) => origin == format!("http://{host}") || origin == format!("https://{host}"),
        None => false,
    }
}

/// Whether the request asks for / uses the cookie transport (`x-refresh-transport: cookie`).
pub fn wants_cookie(headers: &HeaderMap) -> bool {
    headers
        .get(h::REFRESH_TRANSPORT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(h::REFRESH_TRANSPORT_COOKIE))
}

/// The refresh cookie's values (normally zero or one).
pub fn refresh_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == h::REFRESH_COOKIE)
        .map(|c| c.value().to_owned())
        .collect()
}

/// Whether the client asked for a browser-session refresh cookie ("remember me" off).
pub fn wants_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get(h::REFRESH_PERSIST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(h::REFRESH_PERSIST_SESSION))
}

/// `Set-Cookie` value carrying a refresh token for `max_age` seconds, or for the browser
/// session when `max_age` is `None` (the family's lifetime still bounds it on the server).
/// `__Host-` (the cookie's name) requires Secure, Path=/ and no Domain.
pub fn refresh_cookie(token: &str, max_age: Option<i64>) -> String {
    let mut c = Cookie::build((h::REFRESH_COOKIE, token))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict);
    if let Some(s) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(s.max(0)));
    }
    c.build().to_string()
}

/// `Set-Cookie` value that removes the refresh cookie (empty, `Max-Age=0`).
pub fn expired_refresh_cookie() -> String {
    refresh_cookie("", Some(0))
}

/// Whether the Content-Type is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// A short description of the client from its User-Agent.
pub fn device(headers: &HeaderMap) -> String {
    let ua = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ua.is_empty() {
        return "unknown client".to_owned();
    }
    // The first entry whose needle the User-Agent contains (order matters: Edge says Chrome too).
    let first = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map(|(_, name)| *name)
    };
    let browser = first(&[
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]);
    let os = first(&[
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        _ => ua.chars().filter(|c| !c.is_control()).take(60).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hm(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn the_forwarded_client_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let trusted: Vec<ipnet::IpNet> = ["10.0.0.0/8", "fd00::/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let at = |peer: &str, xff: &[&str]| {
            let pairs: Vec<(&'static str, &str)> =
                xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
            forwarded_client(ip(peer), &hm(&pairs), &trusted).to_string()
        };
        // Untrusted peer: the header is ignored.
        assert_eq!(at("203.0.113.5", &["198.51.100.1"]), "203.0.113.5");
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &hm(&[("x-forwarded-for", "1.1.1.1")]), &[])
                .to_string(),
            "10.0.0.1",
            "no trusted proxies: never read"
        );
        // Trusted peer: the right-most entry that is not a trusted proxy.
        assert_eq!(at("10.0.0.1", &["198.51.100.1"]), "198.51.100.1");
        assert_eq!(
            at("10.0.0.1", &["6.6.6.6, 198.51.100.1, 10.0.0.2"]),
            "198.51.100.1",
            "the client's own spoofed entry on the left is ignored"
        );
        assert_eq!(at("10.0.0.1", &["6.6.6.6", "198.51.100.2"]), "198.51.100.2");
        assert_eq!(at("10.0.0.1", &["198.51.100.3:4711"]), "198.51.100.3");
        assert_eq!(at("fd00::1", &["[2001:db8::7]:443"]), "2001:db8::7");
        assert_eq!(
            at("::ffff:10.0.0.1", &["::ffff:198.51.100.4"]),
            "198.51.100.4"
        );
        // No header, garbage, or only proxies.
        assert_eq!(at("10.0.0.1", &[]), "10.0.0.1");
        assert_eq!(at("10.0.0.1", &["6.6.6.6, garbage, 10.0.0.3"]), "10.0.0.3");
        assert_eq!(at("10.0.0.1", &["10.0.0.4, 10.0.0.3"]), "10.0.0.4");
    }

    #[test]
    fn bearer_and_tutorial_header_are_both_read() {
        assert_eq!(
            access_token(&hm(&[("authorization", "Bearer abc")]))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            access_token(&hm(&[("x-access-token", "abc")]))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(access_token(&hm(&[])).unwrap(), None);
    }

    #[test]
    fn ambiguous_or_empty_credentials_are_errors() {
        for h in [
            hm(&[("authorization", "Bearer")]),
            hm(&[("authorization", "Bearer ")]),
            hm(&[("authorization", "Basic dTpw")]),
            hm(&[("authorization", "Bearer a"), ("authorization", "Bearer a")]),
            hm(&[("x-access-token", "a"), ("x-access-token", "b")]),
            hm(&[("x-access-token", "a"), ("authorization", "Bearer b")]),
            hm(&[("x-access-token", "")]),
        ] {
            assert!(access_token(&h).is_err(), "{h:?}");
        }
    }

    #[test]
    fn own_origin_and_configured_origins_are_allowed() {
        let s = Settings {
            allowed_origins: vec!["http://app.test".into()],
            ..Settings::default()
        };
        assert!(origin_allowed(&hm(&[]), &s));
        assert!(origin_allowed(&hm(&[("origin", "http://app.test")]), &s));
        assert!(origin_allowed(
            &hm(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ]),
            &s
        ));
        assert!(!origin_allowed(
            &hm(&[("origin", "http://evil.test"), ("host", "127.0.0.1:8080")]),
            &s
        ));
        assert!(!origin_allowed(&hm(&[("origin", "null")]), &s));
    }

    #[test]
    fn refresh_cookie_is_found_among_others() {
        let h = hm(&[("cookie", "a=1; __Host-refresh=tok; b=2")]);
        assert_eq!(refresh_cookies(&h), vec!["tok".to_owned()]);
        let h = hm(&[
            ("cookie", "a=1"),
            ("cookie", "__Host-refresh=x; __Host-refresh=y"),
        ]);
        assert_eq!(refresh_cookies(&h), vec!["x".to_owned(), "y".to_owned()]);
        assert!(refresh_cookies(&hm(&[("cookie", "__Host-refreshx=1; b=2")])).is_empty());
    }

    /// The attributes of a `Set-Cookie` value, in order, without the name=value pair.
    fn attributes(set_cookie: &str) -> Vec<String> {
        let mut parts: Vec<String> = set_cookie.split(';').map(|p| p.trim().to_owned()).collect();
        parts.remove(0);
        parts.sort();
        parts
    }

    #[test]
    fn refresh_cookies_carry_exactly_the_host_prefix_attributes() {
        let c = refresh_cookie("t", Some(10));
        assert!(c.starts_with("__Host-refresh=t;"), "{c}");
        assert_eq!(
            attributes(&c),
            [
                "HttpOnly",
                "Max-Age=10",
                "Path=/",
                "SameSite=Strict",
                "Secure"
            ]
        );
        let session = refresh_cookie("t", None);
        assert_eq!(
            attributes(&session),
            ["HttpOnly", "Path=/", "SameSite=Strict", "Secure"]
        );
        let removal = expired_refresh_cookie();
        assert!(removal.starts_with("__Host-refresh=;"), "{removal}");
        assert_eq!(
            attributes(&removal),
            [
                "HttpOnly",
                "Max-Age=0",
                "Path=/",
                "SameSite=Strict",
                "Secure"
            ]
        );
        assert!(refresh_cookie("t", Some(-5)).contains("Max-Age=0"));
    }

    #[test]
    fn device_is_summarised() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(device(&hm(&[("user-agent", ua)])), "Chrome on Linux");
        assert_eq!(device(&hm(&[])), "unknown client");
    }
}
