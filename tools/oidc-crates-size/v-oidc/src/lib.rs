//! The openidconnect crate over the same JS transport: discovery (+ JWKS), authorize URL with
//! nonce + PKCE S256, code exchange, ID-token claims through the default verifier (signature
//! checked against the JWKS), refresh_token grant.
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    TokenResponse,
};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static META: RefCell<Option<CoreProviderMetadata>> = RefCell::new(None);
    static PENDING: RefCell<Option<(PkceCodeVerifier, Nonce)>> = RefCell::new(None);
}

fn err(s: impl ToString) -> JsValue {
    JsValue::from_str(&s.to_string())
}

async fn http(req: HttpRequest) -> Result<HttpResponse, jsfetch::FetchError> {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let r = jsfetch::send(req.method().as_str(), &req.uri().to_string(), &headers, req.body()).await?;
    openidconnect::http::Response::builder()
        .status(r.status)
        .body(r.body)
        .map_err(|e| jsfetch::FetchError(e.to_string()))
}

macro_rules! client {
    ($client_id:expr, $redirect:expr) => {{
        let meta = META.with(|m| m.borrow().clone()).ok_or_else(|| err("not discovered"))?;
        CoreClient::from_provider_metadata(meta, ClientId::new($client_id), None)
            .set_redirect_uri(RedirectUrl::new($redirect).map_err(err)?)
    }};
}

#[wasm_bindgen]
pub async fn discover(issuer: String) -> Result<JsValue, JsValue> {
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer).map_err(err)?, &http)
        .await
        .map_err(err)?;
    let auth = meta.authorization_endpoint().to_string();
    META.with(|m| *m.borrow_mut() = Some(meta));
    Ok(JsValue::from_str(&auth))
}

#[wasm_bindgen]
pub fn start(client_id: String, redirect: String) -> Result<JsValue, JsValue> {
    let c = client!(client_id, redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = c
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    PENDING.with(|p| *p.borrow_mut() = Some((verifier, nonce)));
    Ok(JsValue::from_str(url.as_str()))
}

#[wasm_bindgen]
pub async fn exchange(client_id: String, redirect: String, code: String) -> Result<JsValue, JsValue> {
    let c = client!(client_id, redirect);
    let (verifier, nonce) = PENDING.with(|p| p.borrow_mut().take()).ok_or_else(|| err("no pending"))?;
    let t = c
        .exchange_code(AuthorizationCode::new(code))
        .map_err(err)?
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(err)?;
    let id = t.id_token().ok_or_else(|| err("no id_token"))?;
    let claims = id.claims(&c.id_token_verifier(), &nonce).map_err(err)?;
    let _at = t.access_token().secret();
    Ok(JsValue::from_str(claims.subject().as_str()))
}

#[wasm_bindgen]
pub async fn refresh(client_id: String, redirect: String, rt: String) -> Result<JsValue, JsValue> {
    let c = client!(client_id, redirect);
    let rt = RefreshToken::new(rt);
    let t = c
        .exchange_refresh_token(&rt)
        .map_err(err)?
        .request_async(&http)
        .await
        .map_err(err)?;
    Ok(JsValue::from_str(t.access_token().secret()))
}
