//! OpenID Connect's browser parts: the round trip's secrets from Web Crypto (`getRandomValues`,
//! `SubtleCrypto.digest` SHA-256: no hashing code of ours in the wasm), the discovery fetch (with
//! the last good document kept in localStorage, so a provider that is briefly unreachable at
//! load does not sign anyone out), the page's origin and the navigation to the provider.

use wasm_bindgen_futures::JsFuture;

use crate::session::oidc::{self, Endpoints, Secrets};
use crate::session::ports::{Area, HttpRequest, KeyValueStore, Method, Transport};

use super::storage::WebStorage;
use super::transport::FetchTransport;

/// localStorage key of the last discovery document that was usable (not secret): when it was
/// fetched (ms since the epoch), a newline, and the text as the provider sent it, read again by
/// the same parser.
const DISCOVERY_KEY: &str = "yew-session.oidc-discovery";

/// How long a kept discovery document is used at once, without waiting for the provider: the
/// start-up then has no round trip to the provider before the first page (it is fetched again
/// in the background for the next load). Providers change endpoints rarely; a day bounds it.
const DISCOVERY_FRESH_MS: f64 = 24.0 * 3600.0 * 1000.0;

fn crypto() -> Result<web_sys::Crypto, String> {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .ok_or_else(|| "this browser has no Web Crypto".to_string())
}

fn random(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    crypto()?
        .get_random_values_with_u8_array(&mut buf)
        .map_err(|_| "getRandomValues failed".to_string())?;
    Ok(buf)
}

/// SHA-256 by the browser (a secure context: https, or http on 127.0.0.1 / localhost).
pub async fn sha256(data: &[u8]) -> Result<Vec<u8>, String> {
    let promise = crypto()?
        .subtle()
        .digest_with_str_and_u8_array("SHA-256", data)
        .map_err(|_| "SubtleCrypto is unavailable (is the page served over https?)".to_string())?;
    let digest = JsFuture::from(promise)
        .await
        .map_err(|_| "SHA-256 failed".to_string())?;
    Ok(js_sys::Uint8Array::new(&digest).to_vec())
}

/// Fresh secrets for one sign-in: a 256-bit PKCE verifier and its S256 challenge, 128-bit
/// `state` and `nonce`.
pub async fn secrets() -> Result<Secrets, String> {
    let verifier = oidc::b64url(&random(32)?);
    let challenge = oidc::b64url(&sha256(verifier.as_bytes()).await?);
    Ok(Secrets {
        verifier,
        challenge,
        state: oidc::b64url(&random(16)?),
        nonce: oidc::b64url(&random(16)?),
    })
}

/// This page's origin (`http://127.0.0.1:8080`).
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Leaves the app for `url` (the provider's sign-in or sign-out page).
pub fn go(url: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.location().assign(url);
    }
}

/// The provider's endpoints: the document this browser kept from the provider less than a day
/// ago, at once (and fetched again in the background for the next load); else its discovery
/// document, else the last usable one this browser saw for the same issuer, however old (and why
/// the fetch failed, as a warning). The error is a sentence for the sign-in page.
pub async fn discover(issuer: &str) -> Result<(Endpoints, Option<String>), String> {
    let kept = WebStorage
        .get(Area::Local, DISCOVERY_KEY)
        .and_then(|record| {
            // A record of an older version is the text alone: its age is unknown.
            let (at, text) = match record.split_once('\n') {
                Some((at, text)) => (at.parse::<u64>().ok(), text.to_owned()),
                None => (None, record),
            };
            let endpoints = oidc::parse_discovery(&text, issuer).ok()?;
            Some((at, endpoints))
        });
    let now = js_sys::Date::now();
    if let Some((Some(at), endpoints)) = &kept {
        if now - (*at as f64) < DISCOVERY_FRESH_MS {
            let issuer = issuer.to_owned();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = fetch_and_keep(&issuer).await;
            });
            return Ok((endpoints.clone(), None));
        }
    }
    match fetch_and_keep(issuer).await {
        Ok(endpoints) => Ok((endpoints, None)),
        Err(why) => match kept {
            Some((_, endpoints)) => Ok((endpoints, Some(why))),
            None => Err(why),
        },
    }
}

/// Fetches the discovery document and keeps it when usable.
async fn fetch_and_keep(issuer: &str) -> Result<Endpoints, String> {
    let (endpoints, text) = fetch_discovery(issuer).await?;
    let record = [whole_ms(js_sys::Date::now()), "\n".into(), text].concat();
    WebStorage.set(Area::Local, DISCOVERY_KEY, &record);
    Ok(endpoints)
}

/// Milliseconds as an integer's digits (no float printing in the wasm).
fn whole_ms(ms: f64) -> String {
    (ms.max(0.0) as u64).to_string()
}

async fn fetch_discovery(issuer: &str) -> Result<(Endpoints, String), String> {
    // Through the engine's transport (its code is in the wasm already; a second gloo-net
    // request here cost more), without cookies: discovery is public.
    let url = oidc::discovery_url(issuer);
    let mut req = HttpRequest::new(Method::Get, url.clone());
    req.with_credentials = false;
    let resp = FetchTransport::default().send(req).await.map_err(|_| {
        format!("{url} could not be reached (network, or the provider refuses this origin: CORS)")
    })?;
    if resp.status != 200 {
        return Err(format!("{url} answered HTTP {}", resp.status));
    }
    oidc::parse_discovery(&resp.body, issuer).map(|e| (e, resp.body))
}

/// The current page's query string.
pub fn query() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}
