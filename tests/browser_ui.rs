//! Browser tests of the pages (headless Chromium): the whole app is mounted against a fake of
//! our server's contract in cookie mode (`window.fetch` replaced in the page; no network), and
//! driven like a person would: typing, submitting, following links.
#![cfg(target_arch = "wasm32")]

mod browser_support;

use browser_support::app::{fake_fetch, go, Mounted};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::Element;
use yew_session::browser::storage;
use yew_session::config::AppConfig;
use yew_session::session::persist::keys;
use yew_session::session::UserInfo;

wasm_bindgen_test_configure!(run_in_browser);

/// A fake of session-api in cookie mode. `state.session` plays the HttpOnly cookie: the
/// username whose refresh token the browser holds, or null.
const FAKE_SERVER: &str = r#"
const users = {
  alice: { password: 'alice-password', roles: ['ROLE_USER'], email: 'alice@example.org', id: 1 },
  root:  { password: 'root-password', roles: ['ROLE_USER', 'ROLE_MODERATOR', 'ROLE_ADMIN'], email: 'root@example.org', id: 2 },
};
const state = { session: initial, signins: 0, refreshes: 0, signouts: 0, signups: [] };
const b64 = s => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const token = name => {
  const now = Math.floor(Date.now() / 1000);
  return b64('{"alg":"HS256","typ":"JWT"}') + '.' +
    b64(JSON.stringify({ sub: String(users[name].id), roles: users[name].roles, iat: now, exp: now + 600, kind: 'access' })) +
    '.' + b64('signature-' + name + '-' + Math.random());
};
const issued = {};
const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'date': new Date().toUTCString() } });
const who = req => {
  const t = req.headers.get('x-access-token');
  return Object.keys(issued).find(n => issued[n] === t);
};
const fake = async function (input, init) {
  const req = input instanceof Request ? input : new Request(input, init);
  const path = new URL(req.url, location.href).pathname;
  // The content routes' server is unreachable while the page sets this flag.
  if (globalThis.fakeContentDown && path.startsWith('/api/test/')) throw new TypeError('Failed to fetch');
  switch (path) {
    case '/api/auth/signin': {
      state.signins++;
      const b = await req.json();
      const u = users[b.username];
      if (!u || u.password !== b.password) return json(401, { message: 'Invalid username or password.' });
      state.session = b.username;
      issued[b.username] = token(b.username);
      return json(200, { id: u.id, username: b.username, email: u.email, roles: u.roles, accessToken: issued[b.username],
        tokenType: 'Bearer', expiresIn: 600, refreshExpiresIn: globalThis.fakeFamilySecs ?? 86400 });
    }
    case '/api/auth/refreshtoken': {
      state.refreshes++;
      if (!state.session) return json(403, { message: 'Refresh token is not in database!' });
      issued[state.session] = token(state.session);
      return json(200, { accessToken: issued[state.session], tokenType: 'Bearer', expiresIn: 600, refreshExpiresIn: globalThis.fakeFamilySecs ?? 86000 });
    }
    case '/api/auth/signout': state.signouts++; state.session = null; return json(200, { message: 'Signed out.' });
    case '/api/auth/signup': {
      const b = await req.json();
      state.signups.push(b.username);
      if (users[b.username]) return json(400, { message: 'Failed! Username is already in use!' });
      return json(200, { message: 'User registered successfully!' });
    }
    case '/api/auth/sessions': {
      if (!who(req)) return json(401, { message: 'Unauthorized!' });
      const now = Math.floor(Date.now() / 1000);
      return json(200, { sessions: [{ id: 's1', device: 'Chromium on Linux', transport: 'cookie', createdAt: now - 60, lastUsedAt: now, expiresAt: now + 86000, current: true }] });
    }
    case '/api/test/all': return new Response('Public Content.', { status: 200 });
    case '/api/test/user': case '/api/test/mod': case '/api/test/admin': {
      const name = who(req);
      if (!name) return json(401, { message: 'Unauthorized!' });
      const need = { '/api/test/mod': 'ROLE_MODERATOR', '/api/test/admin': 'ROLE_ADMIN' }[path];
      if (need && !users[name].roles.includes(need)) return json(403, { message: 'Require Admin Role!' });
      return new Response({ '/api/test/user': 'User Content.', '/api/test/mod': 'Moderator Content.', '/api/test/admin': 'Admin Content.' }[path], { status: 200 });
    }
  }
  return new Response('not found', { status: 404 });
};
return [fake, state];
"#;

/// One mounted app with its fake server; unmounts and restores `fetch` when dropped.
impl Mounted {
    /// Mounts the app at `path`, with the fake server's cookie holding `session` (a username)
    /// and, as after a real sign-in in cookie mode, the (token-free) profile hint in storage.
    fn at(path: &str, session: Option<&str>) -> Mounted {
        storage::clear_all();
        let window = web_sys::window().unwrap();
        if let Some(name) = session {
            let hint = UserInfo {
                id: "0".into(),
                username: name.into(),
                email: String::new(),
                roles: vec![],
            };
            window
                .local_storage()
                .unwrap()
                .unwrap()
                .set_item(keys::PROFILE, &serde_json::to_string(&hint).unwrap())
                .unwrap();
        }
        go(path);
        let initial = session.map(JsValue::from).unwrap_or(JsValue::NULL);
        let (state, original) = fake_fetch(FAKE_SERVER, &initial);
        Mounted::mount(AppConfig::default(), state, Some(Some(original)), None)
    }

    fn submit(&self) {
        let form = self.find("form").expect("a form");
        let ev = web_sys::Event::new("submit").unwrap();
        ev.init_event_with_bubbles_and_cancelable("submit", true, true);
        form.dispatch_event(&ev).unwrap();
    }

    fn click(&self, el: &Element) {
        el.dyn_ref::<web_sys::HtmlElement>().unwrap().click();
    }

    fn link(&self, text: &str) -> Option<Element> {
        let links = self.root.query_selector_all("nav a, nav button").unwrap();
        (0..links.length())
            .filter_map(|i| links.get(i))
            .filter_map(|n| n.dyn_into::<Element>().ok())
            .find(|e| e.text_content().unwrap_or_default().trim() == text)
    }
}

#[wasm_bindgen_test]
async fn signed_out_visitor_is_sent_to_login_and_brought_back_after_signing_in() {
    let m = Mounted::at("/admin", None);
    m.until("the guard's redirect to the login page", |m| {
        m.path() == "/login?redirect=%2Fadmin"
    })
    .await;
    m.until("the login form", |m| {
        m.find("input[name=username]").is_some()
    })
    .await;
    m.type_into("input[name=username]", "root");
    m.type_into("input[name=password]", "root-password");
    m.submit();
    m.until("the admin board after sign-in", |m| {
        m.path() == "/admin" && m.text().contains("Admin Content.")
    })
    .await;
    assert_eq!(m.counter("signins"), 1.0);
    m.until("the sign-in toast", |m| {
        m.find("[data-testid=toasts]")
            .and_then(|t| t.text_content())
            .is_some_and(|t| t.contains("Signed in as root."))
    })
    .await;
}

#[wasm_bindgen_test]
async fn wrong_password_shows_the_servers_message_and_keeps_the_user_on_the_form() {
    let m = Mounted::at("/login", None);
    m.until("the login form", |m| {
        m.find("input[name=username]").is_some()
    })
    .await;
    m.type_into("input[name=username]", "alice");
    m.type_into("input[name=password]", "not-her-password");
    m.submit();
    m.until("the error message", |m| {
        m.find("[data-testid=login-error]").is_some()
    })
    .await;
    assert!(m.text().contains("Invalid username or password."));
    assert_eq!(m.path(), "/login");
    let button = m.find("button[type=submit]").unwrap();
    assert!(!button.has_attribute("disabled"), "button stays disabled");
}

#[wasm_bindgen_test]
async fn empty_login_form_is_not_sent() {
    let m = Mounted::at("/login", None);
    m.until("the login form", |m| {
        m.find("input[name=username]").is_some()
    })
    .await;
    m.submit();
    m.until("the hint", |m| {
        m.find("[data-testid=login-error]").is_some()
    })
    .await;
    assert_eq!(m.counter("signins"), 0.0);
}

#[wasm_bindgen_test]
async fn nav_follows_the_users_roles() {
    let m = Mounted::at("/home", Some("alice"));
    m.until("alice's nav", |m| m.link("alice").is_some()).await;
    assert!(m.link("User").is_some());
    assert!(m.link("Moderator").is_none());
    assert!(m.link("Admin").is_none());
    assert!(m.link("Log out").is_some());
    assert!(m.link("Login").is_none());
    drop(m);

    let m = Mounted::at("/home", Some("root"));
    m.until("root's nav", |m| m.link("root").is_some()).await;
    assert!(m.link("Moderator").is_some());
    assert!(m.link("Admin").is_some());
}

#[wasm_bindgen_test]
async fn a_user_without_the_role_gets_not_allowed_not_a_logout() {
    let m = Mounted::at("/admin", Some("alice"));
    m.until("the not-allowed page", |m| {
        m.find("[data-testid=not-allowed]").is_some()
    })
    .await;
    assert_eq!(m.path(), "/admin");
    assert!(m.link("Log out").is_some(), "still signed in");
    assert_eq!(m.counter("signouts"), 0.0);
}

#[wasm_bindgen_test]
async fn reload_on_a_guarded_page_restores_silently_and_shows_the_board() {
    let m = Mounted::at("/user", Some("alice"));
    m.until("the user board", |m| m.text().contains("User Content."))
        .await;
    assert_eq!(m.path(), "/user");
    assert_eq!(m.counter("signins"), 0.0, "no new sign-in");
    let toasts = m
        .find("[data-testid=toasts]")
        .unwrap()
        .text_content()
        .unwrap();
    assert!(
        !toasts.contains("Signed in"),
        "a silent restore toasted: {toasts}"
    );
    assert!(m.counter("refreshes") >= 1.0);
}

#[wasm_bindgen_test]
async fn register_validates_inline_then_shows_the_servers_answer() {
    let m = Mounted::at("/register", None);
    m.until("the sign-up form", |m| {
        m.find("input[name=email]").is_some()
    })
    .await;
    m.type_into("input[name=username]", "x");
    m.type_into("input[name=email]", "not-an-email");
    m.type_into("input[name=password]", "short");
    m.submit();
    m.until("three inline errors", |m| {
        m.root
            .query_selector_all(".invalid-feedback")
            .unwrap()
            .length()
            == 3
    })
    .await;
    let signups = || {
        js_sys::Reflect::get(&m.state, &"signups".into())
            .unwrap()
            .dyn_into::<js_sys::Array>()
            .unwrap()
            .length()
    };
    assert_eq!(signups(), 0, "invalid form was sent");

    m.type_into("input[name=username]", "alice");
    m.type_into("input[name=email]", "alice2@example.org");
    m.type_into("input[name=password]", "long-enough-password");
    m.submit();
    m.until("the server's refusal", |m| {
        m.find("[data-testid=register-error]").is_some()
    })
    .await;
    assert!(m.text().contains("Failed! Username is already in use!"));

    m.type_into("input[name=username]", "carol");
    m.submit();
    m.until("the success message", |m| {
        m.find("[data-testid=register-success]").is_some()
    })
    .await;
    assert!(m.text().contains("User registered successfully!"));
    assert!(m.find("a[href='/login']").is_some(), "link to sign in");
}

#[wasm_bindgen_test]
async fn logging_out_toasts_and_returns_to_signed_out_nav() {
    let m = Mounted::at("/profile", Some("alice"));
    m.until("the profile", |m| {
        m.find("[data-testid=profile-username]").is_some()
    })
    .await;
    m.until("the sessions table", |m| {
        m.find("[data-testid=sessions]").is_some()
    })
    .await;
    assert!(m.text().contains("HttpOnly cookie"));
    let logout = m.link("Log out").unwrap();
    m.click(&logout);
    m.until("the signed-out nav", |m| m.link("Login").is_some())
        .await;
    m.until("the sign-out toast", |m| {
        m.find("[data-testid=toasts]")
            .and_then(|t| t.text_content())
            .is_some_and(|t| t.contains("You signed out."))
    })
    .await;
    assert_eq!(m.counter("signouts"), 1.0);
}

#[wasm_bindgen_test]
async fn inspector_shows_the_token_timeline_and_fires_concurrent_calls() {
    let m = Mounted::at("/session", Some("root"));
    m.until("the timeline", |m| {
        m.find("[data-testid=timeline]").is_some()
    })
    .await;
    assert!(m.text().contains("proactive refresh"));
    assert!(m.text().contains("clock offset"));
    let fire = m.find("[data-testid=fire-10]").unwrap();
    m.click(&fire);
    m.until("the burst result", |m| {
        m.find("[data-testid=burst-result]")
            .and_then(|e| e.text_content())
            .is_some_and(|t| t == "10 calls: 10 ok, 0 failed")
    })
    .await;
    let log = m.find("[data-testid=event-log]").unwrap();
    assert!(
        log.child_element_count() >= 1,
        "the event log recorded the restore"
    );
}

fn set_content_down(down: bool) {
    let window = web_sys::window().unwrap();
    js_sys::Reflect::set(&window, &"fakeContentDown".into(), &down.into()).unwrap();
}

/// A page whose content failed because the server could not be reached shows a Retry button
/// that works, and fetches the content again by itself once the server is back.
#[wasm_bindgen_test]
async fn failed_content_has_a_working_retry_and_reloads_by_itself() {
    set_content_down(true);
    let m = Mounted::at("/", None);
    m.until("the error with a Retry button", |m| {
        m.find("[data-testid=content-error]").is_some()
            && m.find("[data-testid=content-retry]").is_some()
    })
    .await;
    assert!(m.text().contains("network error"), "{}", m.text());
    // The server is back: Retry fetches the content.
    set_content_down(false);
    m.click(&m.find("[data-testid=content-retry]").unwrap());
    m.until("the content after Retry", |m| {
        m.find("[data-testid=content]")
            .and_then(|e| e.text_content())
            .as_deref()
            == Some("Public Content.")
    })
    .await;
    drop(m);
    // A fresh page while the server is down, then the server comes back: no click needed.
    set_content_down(true);
    let m = Mounted::at("/", None);
    m.until("the error", |m| {
        m.find("[data-testid=content-error]").is_some()
    })
    .await;
    set_content_down(false);
    for _ in 0..500 {
        yew::scheduler::flush().await;
        if m.find("[data-testid=content]").is_some() {
            break;
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
    }
    assert!(
        m.find("[data-testid=content]").is_some(),
        "the content did not come back by itself within 5 s: {}",
        m.text()
    );
    set_content_down(false);
}

fn set_family_secs(secs: Option<f64>) {
    let window = web_sys::window().unwrap();
    let v = secs.map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
    js_sys::Reflect::set(&window, &"fakeFamilySecs".into(), &v).unwrap();
}

/// Minutes before the session's absolute end, a notice says so and signs in again in place:
/// the page (and its half-filled form) stays, and the notice goes once the new session is there.
#[wasm_bindgen_test]
async fn the_session_end_is_announced_and_signing_in_again_keeps_the_page() {
    set_family_secs(Some(120.0));
    let m = Mounted::at("/user", Some("alice"));
    m.until("the notice", |m| {
        m.find("[data-testid=session-end-notice]").is_some()
    })
    .await;
    assert!(
        m.text().contains("Your session ends in 2 min")
            || m.text().contains("Your session ends in 1 min"),
        "{}",
        m.text()
    );
    m.click(&m.find("[data-testid=session-end-sign-in]").unwrap());
    m.until("the inline form", |m| {
        m.find("[data-testid=session-end-form]").is_some()
    })
    .await;
    set_family_secs(None);
    m.type_into("#session-end-password", "alice-password");
    let form = m.find("[data-testid=session-end-form]").unwrap();
    let ev = web_sys::Event::new("submit").unwrap();
    ev.init_event_with_bubbles_and_cancelable("submit", true, true);
    form.dispatch_event(&ev).unwrap();
    m.until("the notice to go", |m| {
        m.find("[data-testid=session-end-notice]").is_none()
    })
    .await;
    assert_eq!(m.path(), "/user", "still on the same page");
    assert!(m.text().contains("User Content."), "{}", m.text());
    assert_eq!(m.counter("signins"), 1.0);
}
