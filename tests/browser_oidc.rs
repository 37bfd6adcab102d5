//! Browser tests of OpenID Connect's browser parts (headless Chromium): the round trip's secrets
//! from Web Crypto, and the pages an OpenID configuration shows — the sign-in page (the
//! provider's button, no password form, no sign-up), the discovery error, the callback's error.
//! No network: nothing here calls the provider (the e2e tests do, against the real one).
#![cfg(target_arch = "wasm32")]

mod browser_support;

use browser_support::app::{go, Mounted};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use yew_session::browser::{oidc, storage};
use yew_session::config::{AppConfig, Backend, StorageMode, TokenHeader};
use yew_session::session::oidc::{b64url, Endpoints};

wasm_bindgen_test_configure!(run_in_browser);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[wasm_bindgen_test]
async fn web_crypto_hashes_with_sha256_and_makes_fresh_pkce_secrets() {
    // FIPS 180-2's "abc" vector.
    assert_eq!(
        hex(&oidc::sha256(b"abc").await.unwrap()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let a = oidc::secrets().await.unwrap();
    let b = oidc::secrets().await.unwrap();
    assert_eq!(a.verifier.len(), 43, "32 random bytes in base64url");
    assert_eq!(
        a.challenge,
        b64url(&oidc::sha256(a.verifier.as_bytes()).await.unwrap())
    );
    assert_eq!(
        (a.state.len(), a.nonce.len()),
        (22, 22),
        "16 random bytes each"
    );
    assert!(a.verifier != b.verifier && a.state != b.state && a.nonce != b.nonce);
}

fn config(discovered: bool) -> AppConfig {
    AppConfig {
        backend: Backend::Oidc,
        issuer: "https://id.example.test/realms/r".into(),
        client_id: "app".into(),
        storage_mode: StorageMode::Compat,
        token_header: TokenHeader::Bearer,
        endpoints: discovered.then(|| Endpoints {
            issuer: "https://id.example.test/realms/r".into(),
            authorization: "https://id.example.test/auth".into(),
            token: "https://id.example.test/token".into(),
            revocation: None,
            end_session: None,
        }),
        discovery_error: (!discovered).then(|| "https://id.example.test/realms/r/.well-known/openid-configuration answered HTTP 503".into()),
        ..AppConfig::default()
    }
}

impl Mounted {
    fn at(path: &str, cfg: AppConfig) -> Mounted {
        storage::clear_all();
        go(path);
        Mounted::mount(cfg, JsValue::NULL, Some(None), None)
    }
}

#[wasm_bindgen_test]
async fn the_sign_in_page_offers_the_provider_and_no_password_form() {
    let m = Mounted::at("/login?redirect=%2Fadmin", config(true));
    m.until("the provider's button", |m| {
        m.find("[data-testid=provider-sign-in]").is_some()
    })
    .await;
    let button = m.find("[data-testid=provider-sign-in]").unwrap();
    assert_eq!(button.get_attribute("disabled"), None);
    assert!(
        m.text().contains("You sign in at id.example.test"),
        "{}",
        m.text()
    );
    assert!(m.find("input[type=password]").is_none(), "a password form");
    assert!(m.find("input#remember").is_some(), "remember me");
    assert!(!m.text().contains("Sign up"), "accounts are the provider's");
}

#[wasm_bindgen_test]
async fn a_provider_that_could_not_be_discovered_is_named_with_why() {
    let m = Mounted::at("/login", config(false));
    m.until("the discovery error", |m| {
        m.find("[data-testid=login-error]").is_some()
    })
    .await;
    let error = m
        .find("[data-testid=login-error]")
        .unwrap()
        .text_content()
        .unwrap();
    assert!(error.contains("answered HTTP 503"), "{error}");
    let button = m.find("[data-testid=provider-sign-in]").unwrap();
    assert!(
        button.get_attribute("disabled").is_some(),
        "signing in cannot work"
    );
}

#[wasm_bindgen_test]
async fn the_callback_shows_the_providers_error_and_offers_to_sign_in_again() {
    let m = Mounted::at(
        "/callback?error=access_denied&error_description=End-User%20aborted%20interaction",
        config(true),
    );
    m.until("the callback's error", |m| {
        m.find("[data-testid=callback-error]").is_some()
    })
    .await;
    let error = m
        .find("[data-testid=callback-error]")
        .unwrap()
        .text_content()
        .unwrap();
    assert!(
        error.contains("access_denied") && error.contains("End-User aborted interaction"),
        "{error}"
    );
    assert!(m.text().contains("Sign in again"));
    // The same page under another redirectPath: the configured path is the callback.
    drop(m);
    let cfg = AppConfig {
        redirect_path: "/auth/done".into(),
        ..config(true)
    };
    let m = Mounted::at("/auth/done?error=login_required", cfg);
    m.until("the callback's error", |m| {
        m.find("[data-testid=callback-error]").is_some()
    })
    .await;
    assert!(m.text().contains("login_required"));
}

/// A discovery document this browser kept, as `discover` stores it: fetched at `at_ms`.
fn keep_discovery(issuer: &str, at_ms: Option<f64>) {
    let doc = format!(
        r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/auth","token_endpoint":"{issuer}/token"}}"#
    );
    let record = match at_ms {
        Some(at) => format!("{}\n{doc}", at as u64),
        None => doc, // the format before the fetch time was kept
    };
    web_sys::window()
        .unwrap()
        .local_storage()
        .unwrap()
        .unwrap()
        .set_item("yew-session.oidc-discovery", &record)
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_discovery_document_kept_less_than_a_day_ago_is_used_without_waiting_for_the_provider() {
    // Nothing listens on port 9: every fetch of this issuer's document fails.
    let issuer = "http://127.0.0.1:9/realms/r";
    let day = 24.0 * 3600.0 * 1000.0;
    let now = js_sys::Date::now();

    // Kept an hour ago: used as it is, no fetch awaited, so no warning about the provider.
    keep_discovery(issuer, Some(now - 3600.0 * 1000.0));
    let (endpoints, warning) = oidc::discover(issuer).await.unwrap();
    assert_eq!(endpoints.token, format!("{issuer}/token"));
    assert_eq!(warning, None, "the kept document was used at once");

    // Kept two days ago, or in the older record without a time: fetched first, and only because
    // the provider cannot be reached, used with a warning saying so.
    for at in [Some(now - 2.0 * day), None] {
        keep_discovery(issuer, at);
        let (endpoints, warning) = oidc::discover(issuer).await.unwrap();
        assert_eq!(endpoints.authorization, format!("{issuer}/auth"));
        let warning = warning.expect("the provider was asked first");
        assert!(warning.contains("could not be reached"), "{warning}");
    }

    // Kept for another issuer: not this provider's.
    keep_discovery("http://127.0.0.1:9/realms/other", Some(now));
    let err = oidc::discover(issuer).await.unwrap_err();
    assert!(err.contains("could not be reached"), "{err}");
    storage::clear_all();
}
