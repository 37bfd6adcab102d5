//! The oauth2 crate over the same JS transport: BasicClient, authorize URL with PKCE S256,
//! code exchange and refresh_token grant. No discovery (oauth2 has none): endpoints are inputs.
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    TokenResponse, TokenUrl,
};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local!(static VERIFIER: RefCell<Option<PkceCodeVerifier>> = RefCell::new(None));

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn err(s: impl ToString) -> JsValue {
    JsValue::from_str(&s.to_string())
}

fn client(auth: String, token: String, client_id: String, redirect: String) -> Result<Client, JsValue> {
    Ok(BasicClient::new(ClientId::new(client_id))
        .set_auth_uri(AuthUrl::new(auth).map_err(err)?)
        .set_token_uri(TokenUrl::new(token).map_err(err)?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(err)?))
}

async fn http(req: HttpRequest) -> Result<HttpResponse, jsfetch::FetchError> {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let r = jsfetch::send(req.method().as_str(), &req.uri().to_string(), &headers, req.body()).await?;
    oauth2::http::Response::builder()
        .status(r.status)
        .body(r.body)
        .map_err(|e| jsfetch::FetchError(e.to_string()))
}

#[wasm_bindgen]
pub fn start(auth: String, token: String, client_id: String, redirect: String) -> Result<JsValue, JsValue> {
    let c = client(auth, token, client_id, redirect)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state) = c
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    VERIFIER.with(|v| *v.borrow_mut() = Some(verifier));
    Ok(JsValue::from_str(url.as_str()))
}

#[wasm_bindgen]
pub async fn exchange(auth: String, token: String, client_id: String, redirect: String, code: String) -> Result<JsValue, JsValue> {
    let c = client(auth, token, client_id, redirect)?;
    let verifier = VERIFIER.with(|v| v.borrow_mut().take()).ok_or_else(|| err("no verifier"))?;
    let t = c
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(err)?;
    Ok(JsValue::from_str(t.access_token().secret()))
}

#[wasm_bindgen]
pub async fn refresh(auth: String, token: String, client_id: String, redirect: String, rt: String) -> Result<JsValue, JsValue> {
    let c = client(auth, token, client_id, redirect)?;
    let rt = RefreshToken::new(rt);
    let t = c.exchange_refresh_token(&rt).request_async(&http).await.map_err(err)?;
    Ok(JsValue::from_str(t.access_token().secret()))
}
