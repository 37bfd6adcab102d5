//! OpenID Connect's browser parts: the round trip's secrets from Web Crypto (`getRandomValues`,
//! `SubtleCrypto.digest` SHA-256: no hashing code of ours in the wasm), the discovery fetch (with
//! the last good document kept in localStorage, so a provider that is briefly unreachable at
//! load does not sign anyone out), the page's origin and the navigation to the provider.

use wasm_bindgen_futures::JsFuture;

use crate::session::oidc::{self, Endpoints, Secrets};
use crate::session::ports::{Area, HttpRequest, KeyValueStore, Method, Transport};

use super::storage::WebStorage;
use super::transport::FetchTransport;

/// localStorage key of the last discovery document that was usable (not secret): the text as
/// the provider sent it, read again by the same parser.
const DISCOVERY_KEY: &str = "yew-session.oidc-discovery";

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

/// The provider's endpoints: its discovery document, else the last usable one this browser
/// saw for the same issuer (and why the fetch failed, as a warning); the error is a sentence
/// for the sign-in page.
pub async fn discover(issuer: &str) -> Result<(Endpoints, Option<String>), String> {
    let fetched = fetch_discovery(issuer).await;
    match fetched {
        Ok((endpoints, text)) => {
            WebStorage.set(Area::Local, DISCOVERY_KEY, &text);
            Ok((endpoints, None))
        }
        Err(why) => {
            let kept = WebStorage
                .get(Area::Local, DISCOVERY_KEY)
                .and_then(|t| oidc::parse_discovery(&t, issuer).ok());
            match kept {
                Some(e) => Ok((e, Some(why))),
                None => Err(why),
            }
        }
    }
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
