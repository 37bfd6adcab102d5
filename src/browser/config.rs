//! Fetches `/config.json` beside `index.html`; what to make of the answer is decided by
//! [`AppConfig::from_fetched`]. index.html preloads it (`<link rel="preload" as="fetch"
//! crossorigin>`) so that it downloads beside the js and wasm instead of after them; the request
//! here must stay the one the preload made (same URL, fetch()'s default mode cors and
//! credentials same-origin) or the browser fetches the file a second time.

use crate::config::AppConfig;
use crate::session::ports::{HttpRequest, Method, Transport};

use super::transport::FetchTransport;

/// The runtime configuration: `/config.json`, or the defaults with a console warning when the
/// file is missing or broken.
pub async fn load_config() -> AppConfig {
    let (mut config, warning) = AppConfig::from_fetched(fetch_text().await);
    if let Some(warning) = warning {
        gloo_console::warn!(warning);
    }
    if config.oidc() {
        // OpenID Connect: the provider's endpoints before the engine starts (its restore may
        // refresh at once). A failure leaves the app up, saying why on the sign-in page.
        match super::oidc::discover(&config.issuer).await {
            Ok((endpoints, stale)) => {
                if let Some(why) = stale {
                    gloo_console::warn!(format!(
                        "{why}; using the provider's last known configuration"
                    ));
                }
                config.endpoints = Some(endpoints);
            }
            Err(why) => config.discovery_error = Some(why),
        }
    }
    config
}

/// The file's text, or why there is none (completes "config.json …; using defaults").
async fn fetch_text() -> Result<String, String> {
    // Through the engine's transport, like discovery: its code is in the wasm already, and a
    // second gloo-net request path here cost more (`scripts/size`).
    let resp = FetchTransport::default()
        .send(HttpRequest::new(Method::Get, "/config.json".to_string()))
        .await
        .map_err(|e| format!("not loaded ({e})"))?;
    if !(200..300).contains(&resp.status) {
        return Err(format!("answered {}", resp.status));
    }
    Ok(resp.body)
}
