//! Helpers of the browser tests: a bounded wait, JWT construction, and a fake `window.fetch`
//! playing the tutorial's contract (no network is ever used).
#![cfg(target_arch = "wasm32")]
#![allow(dead_code)]

pub mod app;

use futures::future::{select, Either};
use wasm_bindgen::JsValue;

/// Resolves with `fut`'s output, or `None` after `ms` (no test may hang or sleep long).
pub async fn within<T>(ms: u32, fut: impl std::future::Future<Output = T>) -> Option<T> {
    match select(Box::pin(fut), gloo_timers::future::TimeoutFuture::new(ms)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

pub fn jwt(iat: i64, exp: i64) -> String {
    let payload = format!(r#"{{"id":1,"iat":{iat},"exp":{exp}}}"#);
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(payload.as_bytes()),
        b64url(b"sig")
    )
}

/// Replaces `window.fetch` with a fake of the tutorial contract; returns the counters object
/// and the original fetch (to restore).
pub fn mock_fetch(fresh_token: &str) -> (JsValue, JsValue) {
    let window = web_sys::window().unwrap();
    let original = js_sys::Reflect::get(&window, &"fetch".into()).unwrap();
    let factory = js_sys::Function::new_with_args(
        "fresh",
        r#"
        const state = { refresh: 0, api: 0, api401: 0, signout: 0 };
        const fake = async function (input, init) {
            const req = input instanceof Request ? input : new Request(input, init);
            const path = new URL(req.url, location.href).pathname;
            if (path === '/api/auth/refreshtoken') {
                state.refresh++;
                const body = await req.json();
                if (body.refreshToken !== 'rt-1') {
                    return new Response(JSON.stringify({message: 'Refresh token is not in database!'}),
                        {status: 403, headers: {'content-type': 'application/json'}});
                }
                return new Response(JSON.stringify({accessToken: fresh, refreshToken: 'rt-1'}),
                    {status: 200, headers: {'content-type': 'application/json'}});
            }
            if (path === '/api/test/user') {
                state.api++;
                if (req.headers.get('x-access-token') === fresh) {
                    return new Response('User Content.', {status: 200});
                }
                state.api401++;
                return new Response('Unauthorized', {status: 401, headers: {'content-type': 'text/plain'}});
            }
            if (path === '/api/auth/signin') {
                if (req.headers.get('x-refresh-transport') !== 'cookie') {
                    return new Response(JSON.stringify({message: 'cookie transport expected'}), {status: 400});
                }
                return new Response(JSON.stringify({id: 1, username: 'alice', email: 'a@x.io',
                    roles: ['ROLE_USER'], accessToken: fresh, tokenType: 'Bearer', expiresIn: 600,
                    refreshExpiresIn: 86400}),
                    {status: 200, headers: {'content-type': 'application/json'}});
            }
            if (path === '/api/auth/signout') {
                state.signout++;
                return new Response('<html>Cannot POST /api/auth/signout</html>', {status: 404});
            }
            if (path === '/config.json') {
                return state.config ? new Response(state.config, {status: 200}) : new Response('missing', {status: 404});
            }
            if (path === '/status/429') {
                return new Response('slow down', {status: 429, headers: {'retry-after': '7'}});
            }
            if (path === '/offline') {
                throw new TypeError('Failed to fetch');
            }
            return new Response('<html>Cannot GET</html>', {status: 404});
        };
        return [fake, state];
        "#,
    );
    let pair: js_sys::Array = factory
        .call1(&JsValue::NULL, &fresh_token.into())
        .unwrap()
        .into();
    js_sys::Reflect::set(&window, &"fetch".into(), &pair.get(0)).unwrap();
    (pair.get(1), original)
}

pub fn restore_fetch(original: &JsValue) {
    let window = web_sys::window().unwrap();
    js_sys::Reflect::set(&window, &"fetch".into(), original).unwrap();
}

pub fn counter(state: &JsValue, name: &str) -> f64 {
    js_sys::Reflect::get(state, &name.into())
        .unwrap()
        .as_f64()
        .unwrap()
}

/// Polls `cond` every few ms for at most `ms` (never a long sleep).
pub async fn wait_for(ms: u32, cond: impl Fn() -> bool) -> bool {
    let start = js_sys::Date::now();
    while js_sys::Date::now() - start < ms as f64 {
        if cond() {
            return true;
        }
        gloo_timers::future::TimeoutFuture::new(5).await;
    }
    cond()
}
