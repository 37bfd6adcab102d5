//! Roughly the hand-written client: discovery parsed into serde_json::Value, PKCE from Web Crypto
//! (getRandomValues + subtle.digest, no hashing code in the wasm), a hand-written form encoder,
//! token answers parsed into Value, the ID token's payload decoded from base64url and its claims
//! checked (no signature check).
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = digest)]
    fn digest(alg: &str, data: &[u8]) -> js_sys::Promise;
}

#[derive(Default)]
struct State {
    issuer: String,
    auth: String,
    token: String,
    verifier: String,
    nonce: String,
}
thread_local!(static ST: RefCell<State> = RefCell::new(State::default()));

fn err(s: impl Into<String>) -> JsValue {
    JsValue::from_str(&s.into())
}

fn rand_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    get_random_values(&mut b);
    Base64UrlUnpadded::encode_string(&b)
}

fn pct(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                const H: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(H[(b >> 4) as usize] as char);
                out.push(H[(b & 15) as usize] as char);
            }
        }
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        pct(&mut s, k);
        s.push('=');
        pct(&mut s, v);
    }
    s
}

fn str_field(v: &Value, k: &str) -> Result<String, JsValue> {
    v.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| err(format!("missing {k}")))
}

async fn post_form(url: &str, body: String) -> Result<Value, JsValue> {
    let h = vec![
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
        ("accept".to_string(), "application/json".to_string()),
    ];
    let r = jsfetch::send("POST", url, &h, body.as_bytes()).await.map_err(|e| err(e.0))?;
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| err(e.to_string()))?;
    if r.status != 200 {
        return Err(err(format!("{}: {}", r.status, v.get("error").and_then(Value::as_str).unwrap_or(""))));
    }
    Ok(v)
}

fn check_id_token(jwt: &str, client_id: &str, now: f64) -> Result<String, JsValue> {
    let payload = jwt.split('.').nth(1).ok_or_else(|| err("not a JWT"))?;
    let bytes = Base64UrlUnpadded::decode_vec(payload).map_err(|e| err(e.to_string()))?;
    let c: Value = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    ST.with(|s| {
        let s = s.borrow();
        if str_field(&c, "iss")? != s.issuer {
            return Err(err("iss"));
        }
        let aud_ok = match c.get("aud") {
            Some(Value::String(a)) => a == client_id,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(client_id)),
            _ => false,
        };
        if !aud_ok {
            return Err(err("aud"));
        }
        if c.get("exp").and_then(Value::as_f64).unwrap_or(0.0) <= now {
            return Err(err("exp"));
        }
        if str_field(&c, "nonce")? != s.nonce {
            return Err(err("nonce"));
        }
        str_field(&c, "sub")
    })
}

#[wasm_bindgen]
pub async fn discover(issuer: String) -> Result<JsValue, JsValue> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let r = jsfetch::send("GET", &url, &[], &[]).await.map_err(|e| err(e.0))?;
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| err(e.to_string()))?;
    let iss = str_field(&v, "issuer")?;
    if iss != issuer {
        return Err(err("issuer mismatch"));
    }
    let auth = str_field(&v, "authorization_endpoint")?;
    let token = str_field(&v, "token_endpoint")?;
    ST.with(|s| {
        let mut s = s.borrow_mut();
        s.issuer = iss;
        s.auth = auth.clone();
        s.token = token;
    });
    Ok(JsValue::from_str(&auth))
}

#[wasm_bindgen]
pub async fn start(client_id: String, redirect: String) -> Result<JsValue, JsValue> {
    let verifier = rand_b64(32);
    let state = rand_b64(16);
    let nonce = rand_b64(16);
    let d = JsFuture::from(digest("SHA-256", verifier.as_bytes())).await?;
    let challenge = Base64UrlUnpadded::encode_string(&js_sys::Uint8Array::new(&d).to_vec());
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", &redirect),
        ("scope", "openid profile offline_access"),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let url = ST.with(|s| {
        let mut s = s.borrow_mut();
        s.verifier = verifier;
        s.nonce = nonce;
        format!("{}?{}", s.auth, q)
    });
    Ok(JsValue::from_str(&url))
}

#[wasm_bindgen]
pub async fn exchange(client_id: String, redirect: String, code: String, now: f64) -> Result<JsValue, JsValue> {
    let (token, verifier) = ST.with(|s| (s.borrow().token.clone(), s.borrow().verifier.clone()));
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &redirect),
        ("client_id", &client_id),
        ("code_verifier", &verifier),
    ]);
    let v = post_form(&token, body).await?;
    let _at = str_field(&v, "access_token")?;
    let sub = check_id_token(&str_field(&v, "id_token")?, &client_id, now)?;
    Ok(JsValue::from_str(&sub))
}

#[wasm_bindgen]
pub async fn refresh(client_id: String, refresh_token: String) -> Result<JsValue, JsValue> {
    let token = ST.with(|s| s.borrow().token.clone());
    let body = form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", &client_id)]);
    let v = post_form(&token, body).await?;
    Ok(JsValue::from_str(&str_field(&v, "access_token")?))
}
