//! Browser tests of the sign-in page in `"backend": "bff"` mode (headless Chromium, the real app
//! mounted against a fake of session-api's BFF endpoints in `window.fetch`): one button to the
//! server's sign-in, a failed sign-in's `?bff_error=` in words, and — when the server's 401 says
//! `"login": "password"` — the password form, which signs in through `/api/bff/signin` with the
//! CSRF header (its refusal shown as the server worded it). The redirect itself is the e2e's.
#![cfg(target_arch = "wasm32")]

mod browser_support;

use browser_support::app::{fake_fetch, go, Mounted};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use yew_session::browser::storage;
use yew_session::config::AppConfig;

wasm_bindgen_test_configure!(run_in_browser);

/// `initial`: the server's sign-in kind (`"password"`, or null for the provider's redirect).
/// `state.signins` records each `/api/bff/signin` request: its CSRF header and body.
const FAKE_BFF: &str = r#"
const state = { kind: initial, session: false, signins: [], reads: 0 };
const json = (status, body) => new Response(JSON.stringify(body),
  { status, headers: { 'content-type': 'application/json', 'date': new Date().toUTCString() } });
const session = () => json(200, { user: { sub: 'u-1', name: 'ann', email: null, roles: [] },
  createdAt: Date.now(), expiresAt: Date.now() + 3600000, accessTokenExpiresAt: Date.now() + 5000,
  lastRefreshedAt: null, refreshCount: 0 });
const fake = async function (input, init) {
  const req = input instanceof Request ? input : new Request(input, init);
  const path = new URL(req.url, location.href).pathname;
  if (path === '/api/bff/session') {
    state.reads++;
    if (state.session) return session();
    const body = { message: 'Not signed in.', code: 'bff_no_session' };
    if (state.kind) body.login = state.kind;
    return json(401, body);
  }
  if (path === '/api/bff/signin' && req.method === 'POST') {
    const body = await req.json();
    state.signins.push({ csrf: req.headers.get('x-csrf'), body });
    if (body.password !== 'right') return json(401, { code: 'bff_bad_credentials', message: 'Wrong username or password.' });
    state.session = true;
    return session();
  }
  if (path.startsWith('/api/rs/')) return state.session ? new Response('User Content.') : json(401, { code: 'bff_no_session' });
  return json(404, { message: 'Not found' });
};
return [fake, state];
"#;

fn bff_config() -> AppConfig {
    AppConfig::from_json(r#"{"backend":"bff","apiBase":"/api/rs"}"#).unwrap()
}

fn at(path: &str, kind: Option<&str>) -> Mounted {
    storage::clear_all();
    go(path);
    let initial = kind.map_or(JsValue::NULL, JsValue::from_str);
    let (state, original) = fake_fetch(FAKE_BFF, &initial);
    Mounted::mount(bff_config(), state, Some(Some(original)), None)
}

#[wasm_bindgen_test]
async fn the_sign_in_page_is_one_button_and_says_in_words_why_a_sign_in_failed() {
    let m = at("/login?redirect=%2Fadmin&bff_error=login_expired", None);
    m.until("the server's sign-in button", |m| {
        m.find("[data-testid=provider-sign-in]").is_some()
    })
    .await;
    assert!(m.find("input[type=password]").is_none(), "a password form");
    assert!(
        m.find("input#remember").is_none(),
        "the server's cookie decides"
    );
    assert!(!m.text().contains("Sign up"), "accounts are the provider's");
    assert!(m.text().contains("This app keeps no token"), "{}", m.text());
    let error = m.text_of("[data-testid=login-error]");
    assert_eq!(
        error,
        "The sign-in took too long (more than 10 minutes). Please sign in again."
    );
    assert_eq!(m.counter("reads"), 1.0, "the restore's read only");
}

#[wasm_bindgen_test]
async fn a_password_upstream_gets_the_form_which_signs_in_through_the_server() {
    let m = at("/login?redirect=%2Fuser", Some("password"));
    m.until("the password form", |m| {
        m.find("input[name=password]").is_some()
    })
    .await;
    assert!(m.find("[data-testid=provider-sign-in]").is_none());
    assert!(m.find("input#remember").is_none());
    assert!(!m.text().contains("Sign up"));
    let submit = |m: &Mounted| {
        let form = m.find("form").unwrap();
        let ev = web_sys::Event::new("submit").unwrap();
        ev.init_event_with_bubbles_and_cancelable("submit", true, true);
        form.dispatch_event(&ev).unwrap();
    };
    m.type_into("input[name=username]", "ann");
    m.type_into("input[name=password]", "wrong");
    submit(&m);
    m.until("the refusal", |m| {
        m.find("[data-testid=login-error]").is_some()
    })
    .await;
    assert_eq!(
        m.text_of("[data-testid=login-error]"),
        "Wrong username or password."
    );
    m.type_into("input[name=password]", "right");
    submit(&m);
    m.until("signed in on /user", |m| m.path() == "/user").await;
    let signins = m.array("signins");
    assert_eq!(signins.length(), 2);
    for s in signins.iter() {
        let csrf = js_sys::Reflect::get(&s, &"csrf".into()).unwrap();
        assert_eq!(csrf.as_string().as_deref(), Some("1"));
    }
    let last: js_sys::Object = signins.get(1).unchecked_into();
    let body =
        js_sys::JSON::stringify(&js_sys::Reflect::get(&last, &"body".into()).unwrap()).unwrap();
    assert_eq!(
        body.as_string().as_deref(),
        Some(r#"{"username":"ann","password":"right"}"#)
    );
}
