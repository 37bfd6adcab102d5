//! The shared transport of all three variants: one JS import (a global `sizeProbeHttp`)
//! that takes method, url, flat header pairs and body bytes and resolves to {status, body}.
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = sizeProbeHttp)]
    fn http_js(method: &str, url: &str, headers: &js_sys::Array, body: &[u8]) -> js_sys::Promise;
}

pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct FetchError(pub String);

impl core::fmt::Display for FetchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for FetchError {}

pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Resp, FetchError> {
    let arr = js_sys::Array::new();
    for (k, v) in headers {
        arr.push(&JsValue::from_str(k));
        arr.push(&JsValue::from_str(v));
    }
    let v = JsFuture::from(http_js(method, url, &arr, body))
        .await
        .map_err(|e| FetchError(e.as_string().unwrap_or_else(|| "fetch failed".into())))?;
    let status = js_sys::Reflect::get(&v, &JsValue::from_str("status"))
        .ok()
        .and_then(|s| s.as_f64())
        .unwrap_or(0.0) as u16;
    let b = js_sys::Reflect::get(&v, &JsValue::from_str("body"))
        .map_err(|_| FetchError("no body".into()))?;
    Ok(Resp { status, body: js_sys::Uint8Array::new(&b).to_vec() })
}
