//! OpenID Connect, the pure parts: the discovery document, the authorization request (PKCE S256,
//! `state`, `nonce`), the callback's query, the token endpoint's requests and answers, and the
//! checks of the ID token. No I/O: the random bytes and the SHA-256 come from the browser's
//! crypto (`crate::browser::oidc`), the requests go through the engine's transport.
//!
//! Hand-written rather than the `oauth2` / `openidconnect` crates, for wasm size: what the app
//! needs is a dozen form fields, one JSON object and base64url (already linked), and those
//! crates bring their own HTTP abstraction, `url`, `chrono`, `rand` and (openidconnect) RSA and
//! ECDSA verification. Measured (`tools/oidc-crates-size/measure`, README "Use with an OpenID
//! Connect provider"): over a baseline doing what this module does, oauth2 5.0 adds 108.6 KB
//! gzip and openidconnect 4.1 258.1 KB; the whole OpenID client here, pages included, 20.6 KB.
//!
//! The ID token's signature is not checked: it comes straight from the token endpoint over the
//! connection the browser opened to the issuer, in answer to this tab's code and verifier, which
//! OpenID Connect Core 3.1.3.7 (item 6) allows in place of a signature check. Its claims are
//! checked (iss, aud, azp, nonce, exp, iat).

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

use super::types::UserInfo;

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    /// The issuer, as the document states it (equal to the configured one).
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization: String,
    /// `token_endpoint`.
    pub token: String,
    /// `revocation_endpoint` (RFC 7009), when advertised.
    pub revocation: Option<String>,
    /// `end_session_endpoint` (RP-initiated logout), when advertised.
    pub end_session: Option<String>,
}

/// Where the discovery document of `issuer` is.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// A string member of a JSON object.
fn text(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Reads a discovery document fetched for `issuer`; the error is a sentence for the sign-in page.
/// (Through `serde_json::Value`, which the app links anyway, rather than a derived type: wasm
/// size.)
pub fn parse_discovery(doc: &str, issuer: &str) -> Result<Endpoints, String> {
    let v: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    let need = |name: &str| {
        text(&v, name).ok_or_else(|| {
            format!("its discovery document is not a usable OpenID configuration (no {name})")
        })
    };
    let found = need("issuer")?;
    // OpenID Connect Discovery 1.0, 4.3: the issuer must be exactly the one configured.
    if found != issuer {
        return Err(format!(
            "its discovery document names the issuer \"{found}\", not \"{issuer}\" (check the trailing slash of \"issuer\" in config.json)"
        ));
    }
    if let Some(Value::Array(methods)) = v.get("code_challenge_methods_supported") {
        if !methods.iter().any(|m| m == "S256") {
            return Err("it does not support PKCE with S256".into());
        }
    }
    Ok(Endpoints {
        authorization: need("authorization_endpoint")?,
        token: need("token_endpoint")?,
        revocation: text(&v, "revocation_endpoint"),
        end_session: text(&v, "end_session_endpoint"),
        issuer: found,
    })
}

/// base64url without padding (PKCE, `state`, `nonce`).
pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// The secrets of one sign-in round trip, made by the browser's crypto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// PKCE `code_verifier` (43 characters of base64url from 32 random bytes).
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
    /// `state`, checked on the way back (CSRF).
    pub state: String,
    /// `nonce`, checked in the ID token (replay).
    pub nonce: String,
}

/// What a tab keeps (sessionStorage) between sending the user to the provider and the callback;
/// cleared on the way back, whatever happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Expected `state`.
    pub state: String,
    /// PKCE verifier.
    pub verifier: String,
    /// Expected `nonce`.
    pub nonce: String,
    /// The exact `redirect_uri` sent (the code exchange repeats it).
    pub redirect_uri: String,
    /// The app's path to go back to.
    pub return_to: String,
    /// "Remember me on this device".
    pub remember: bool,
    /// Browser ms when the round trip started (an old one is refused).
    pub started_at: f64,
}

/// How long a round trip may take before its callback is refused.
pub const PENDING_MAX_AGE_MS: f64 = 15.0 * 60_000.0;

impl Pending {
    /// One value per line (none of them can hold a line break: base64url, an URL, a path).
    /// Hand-written rather than a serde derive: wasm size.
    pub fn to_text(&self) -> String {
        let started = (self.started_at.max(0.0) as u64).to_string();
        [
            self.state.as_str(),
            &self.verifier,
            &self.nonce,
            &self.redirect_uri,
            &self.return_to,
            if self.remember { "1" } else { "0" },
            &started,
        ]
        .join("\n")
    }

    /// Reads [`Pending::to_text`]; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Pending> {
        let mut l = text.split('\n').map(str::to_owned);
        let mut next = || l.next().filter(|v| !v.is_empty());
        let p = Pending {
            state: next()?,
            verifier: next()?,
            nonce: next()?,
            redirect_uri: next()?,
            return_to: next()?,
            remember: next()? == "1",
            started_at: next()?.parse::<u64>().ok()? as f64,
        };
        next().is_none().then_some(p)
    }
}

/// `application/x-www-form-urlencoded` of one value (RFC 3986 unreserved kept, the rest %XX).
fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// A form body or query string of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    }
    out
}

/// `url` with the query `pairs` appended.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", form(pairs))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `name` in a query string (with or without its `?`).
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| decode(k) == name)
        .map(|(_, v)| decode(v))
}

/// What the authorization request asks for, beyond the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// The exact redirect URI registered at the provider.
    pub redirect_uri: &'a str,
    /// Space-separated scopes.
    pub scopes: &'a str,
    /// Optional `audience`.
    pub audience: Option<&'a str>,
    /// Optional `resource`.
    pub resource: Option<&'a str>,
    /// Optional `prompt` (`consent`: what Logto and oidc-provider need before they issue a
    /// refresh token for `offline_access`).
    pub prompt: Option<&'a str>,
}

/// The URL that sends the user to the provider's sign-in.
pub fn authorize_url(endpoint: &str, r: &Request, s: &Secrets) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", r.client_id),
        ("redirect_uri", r.redirect_uri),
        ("scope", r.scopes),
        ("state", s.state.as_str()),
        ("nonce", s.nonce.as_str()),
        ("code_challenge", s.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(a) = r.audience {
        pairs.push(("audience", a));
    }
    if let Some(res) = r.resource {
        pairs.push(("resource", res));
    }
    if let Some(p) = r.prompt {
        pairs.push(("prompt", p));
    }
    with_query(endpoint, &pairs)
}

/// The provider's answer on the redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// The code, for the state.
    Code {
        /// `code`.
        code: String,
        /// `state`.
        state: String,
        /// `iss` (RFC 9207), when the provider sends it.
        iss: Option<String>,
    },
    /// The provider refused or failed (`error`, `error_description`).
    Error {
        /// `error`.
        error: String,
        /// `error_description`.
        description: Option<String>,
        /// `state`, when sent.
        state: Option<String>,
    },
}

/// Reads the redirect URI's query; `None` when it is neither a code nor an error.
pub fn parse_callback(query: &str) -> Option<Callback> {
    let get = |n| query_value(query, n).filter(|v| !v.is_empty());
    if let Some(error) = get("error") {
        return Some(Callback::Error {
            error,
            description: get("error_description"),
            state: get("state"),
        });
    }
    Some(Callback::Code {
        code: get("code")?,
        state: get("state")?,
        iss: get("iss"),
    })
}

/// The code exchange (authorization_code grant, public client: no secret, the verifier).
pub fn code_exchange_body(code: &str, p: &Pending, client_id: &str) -> String {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &p.redirect_uri),
        ("code_verifier", &p.verifier),
        ("client_id", client_id),
    ])
}

/// The `refresh_token` grant.
pub fn refresh_body(refresh_token: &str, client_id: &str) -> String {
    form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ])
}

/// RFC 7009 revocation of a refresh token.
pub fn revocation_body(refresh_token: &str, client_id: &str) -> String {
    form(&[
        ("token", refresh_token),
        ("token_type_hint", "refresh_token"),
        ("client_id", client_id),
    ])
}

/// RP-initiated logout: the URL of the provider's end-session endpoint.
pub fn end_session_url(
    endpoint: &str,
    id_token: Option<&str>,
    post_logout_redirect_uri: &str,
    client_id: &str,
) -> String {
    let mut pairs = vec![];
    if let Some(t) = id_token {
        pairs.push(("id_token_hint", t));
    }
    pairs.push(("post_logout_redirect_uri", post_logout_redirect_uri));
    pairs.push(("client_id", client_id));
    with_query(endpoint, &pairs)
}

/// A token endpoint's success answer (RFC 6749 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    /// The access token: opaque to the client, never parsed.
    pub access_token: String,
    /// Seconds the access token lives (the schedule's only source).
    pub expires_in: Option<u64>,
    /// A rotated refresh token; none: keep the previous one.
    pub refresh_token: Option<String>,
    /// An ID token (always on sign-in; on refresh when the provider sends one).
    pub id_token: Option<String>,
    /// Seconds the refresh token lives, when the provider says (Keycloak does).
    pub refresh_expires_in: Option<u64>,
}

/// A number of seconds, or the string of one some providers send.
fn seconds(v: &Value, name: &str) -> Option<u64> {
    match v.get(name)? {
        Value::Number(n) => n.as_f64().filter(|s| *s >= 0.0).map(|s| s as u64),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a token answer (through `serde_json::Value`, as [`parse_discovery`]).
pub fn parse_token_answer(body: &str) -> Result<TokenAnswer, String> {
    let v: Value = serde_json::from_str(body).map_err(|_| "unreadable token answer".to_string())?;
    let access_token = text(&v, "access_token")
        .filter(|t| !t.is_empty())
        .ok_or("the token answer carries no access token")?;
    Ok(TokenAnswer {
        access_token,
        expires_in: seconds(&v, "expires_in"),
        refresh_token: text(&v, "refresh_token"),
        id_token: text(&v, "id_token"),
        refresh_expires_in: seconds(&v, "refresh_expires_in"),
    })
}

/// An ID token's claims, read without its signature (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct IdToken {
    /// All claims.
    pub claims: Value,
    /// `iat`, Unix ms (provider clock).
    pub iat_ms: Option<f64>,
    /// `exp`, Unix ms (provider clock).
    pub exp_ms: Option<f64>,
}

/// Decodes an ID token's payload.
pub fn read_id_token(token: &str) -> Result<IdToken, String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the ID token is not a JWT".into());
    };
    let json = Base64UrlUnpadded::decode_vec(payload)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("the ID token's claims are not base64url")?;
    let claims: Value =
        serde_json::from_str(&json).map_err(|_| "the ID token's claims are not JSON")?;
    if !claims.is_object() {
        return Err("the ID token's claims are not an object".into());
    }
    let ms = |n: &str| claims.get(n).and_then(Value::as_f64).map(|s| s * 1000.0);
    Ok(IdToken {
        iat_ms: ms("iat"),
        exp_ms: ms("exp"),
        claims,
    })
}

/// How far the provider's `iat` may be ahead of our estimate of its clock, and `exp` behind it.
pub const ID_TOKEN_LEEWAY_MS: f64 = 60_000.0;

/// What the ID token must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The nonce sent (sign-in); `None` on refresh, where the token need not carry one.
    pub nonce: Option<&'a str>,
    /// On refresh: the sign-in's nonce, which a refreshed ID token that carries a nonce must
    /// repeat (OpenID Connect Core 12.2).
    pub sign_in_nonce: Option<&'a str>,
    /// On refresh: the subject of the session (OpenID Connect Core 12.2: must not change).
    pub sub: Option<&'a str>,
}

/// Why an ID token was refused: a claim that does not hold, or (on refresh) another user than
/// the session's — the one refusal that must end the session rather than drop the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenRefused {
    /// `sub` changed on refresh (OpenID Connect Core 12.2).
    #[error("the refreshed ID token names another user")]
    OtherUser,
    /// Any other claim.
    #[error("{0}")]
    Claim(String),
}

fn claim_refused(why: &str) -> IdTokenRefused {
    IdTokenRefused::Claim(why.to_owned())
}

/// Checks an ID token's claims (OpenID Connect Core 3.1.3.7 items 2-4, 9, 10, 11; 12.2 on
/// refresh: the same `sub`, and the sign-in's `nonce` if it carries one) at `provider_now` (our estimate of the provider's clock, ms).
pub fn check_id_token(t: &IdToken, e: &Expect, provider_now: f64) -> Result<(), IdTokenRefused> {
    let c = &t.claims;
    let s = |n: &str| c.get(n).and_then(Value::as_str);
    if s("iss") != Some(e.issuer) {
        return Err(IdTokenRefused::Claim(format!(
            "the ID token was issued by \"{}\", not \"{}\"",
            s("iss").unwrap_or("nobody"),
            e.issuer
        )));
    }
    let auds: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !auds.contains(&e.client_id) {
        return Err(claim_refused(
            "the ID token is not meant for this app (aud)",
        ));
    }
    match s("azp") {
        Some(azp) if azp != e.client_id => {
            return Err(claim_refused(
                "the ID token was issued to another party (azp)",
            ))
        }
        None if auds.len() > 1 => {
            return Err(claim_refused(
                "the ID token has several audiences and no azp",
            ))
        }
        _ => {}
    }
    if let Some(nonce) = e.nonce {
        if s("nonce") != Some(nonce) {
            return Err(claim_refused(
                "the ID token's nonce is not this sign-in's (replayed?)",
            ));
        }
    }
    if let (Some(was), Some(now)) = (e.sign_in_nonce, s("nonce")) {
        if was != now {
            return Err(claim_refused(
                "the refreshed ID token's nonce is not the sign-in's",
            ));
        }
    }
    match (e.sub, s("sub")) {
        (_, None) => return Err(claim_refused("the ID token has no subject")),
        (Some(was), Some(now)) if was != now => return Err(IdTokenRefused::OtherUser),
        _ => {}
    }
    match t.exp_ms {
        None => return Err(claim_refused("the ID token has no expiry")),
        Some(exp) if exp + ID_TOKEN_LEEWAY_MS < provider_now => {
            return Err(claim_refused(
                "the ID token has expired (or this device's clock is wrong)",
            ))
        }
        _ => {}
    }
    if t.iat_ms
        .is_none_or(|iat| iat > provider_now + ID_TOKEN_LEEWAY_MS)
    {
        return Err(claim_refused(
            "the ID token's issue time is missing or in the future",
        ));
    }
    Ok(())
}

/// The value at a claim name or dotted path (`realm_access.roles`); a name with dots that is a
/// claim of its own (`https://example.com/roles`) is taken first.
fn claim<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    claims
        .get(path)
        .or_else(|| path.split('.').try_fold(claims, |v, k| v.get(k)))
}

/// The user an ID token describes; `roles_claim`: where the roles are (a list of strings, or one
/// space-separated string). Without roles, a signed-in user is `ROLE_USER`.
pub fn user_of(t: &IdToken, roles_claim: Option<&str>) -> UserInfo {
    let s = |n: &str| {
        t.claims
            .get(n)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let sub = s("sub").unwrap_or_default().to_string();
    let mut roles: Vec<String> = match roles_claim.and_then(|p| claim(&t.claims, p)) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(v)) => v.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    if roles.is_empty() {
        roles.push(api_types::roles::USER.to_string());
    }
    UserInfo {
        username: s("preferred_username")
            .or(s("name"))
            .or(s("email"))
            .unwrap_or(&sub)
            .to_string(),
        email: s("email").unwrap_or_default().to_string(),
        id: sub,
        roles,
    }
}

#[cfg(test)]
mod tests;
