//! Browser tests of a person's account (headless Chromium): the change-password page and the
//! profile's account actions and sessions table, with the whole app mounted against a fake of
//! session-api's account endpoints in `window.fetch` (no network), driven by typing and clicking.
//! Two apps mounted in one page are two tabs of one browser: they share storage and
//! BroadcastChannel, as tabs do.
#![cfg(target_arch = "wasm32")]

mod browser_support;

use browser_support::app::{fake_fetch, go, window, Mounted};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use yew_session::browser::storage;
use yew_session::config::{AppConfig, StorageMode};
use yew_session::session::persist::keys;
use yew_session::session::UserInfo;

wasm_bindgen_test_configure!(run_in_browser);

/// A fake of session-api in cookie mode with the account endpoints. `state.session` plays the
/// HttpOnly cookie (the username whose session this browser holds, or null); alice has three
/// sessions, this browser's first. `globalThis.fakeThrottled` makes the password checks answer
/// 429 with `Retry-After: 7`.
const FAKE_SERVER: &str = r#"
const user = { name: 'alice', password: 'alice-password', id: 1 };
const now = () => Math.floor(Date.now() / 1000);
const state = { session: initial, signouts: 0, refreshes: 0, passwordCalls: 0, others: 0, all: 0,
  deletes: 0, ended: [], bodies: [], contentTypes: [],
  sessions: [
    { id: 's1', device: 'Chrome on Linux', transport: 'cookie', current: true },
    { id: 's2', device: 'Firefox on Windows', transport: 'cookie', current: false },
    { id: 's3', device: 'Safari on iPhone', transport: 'cookie', current: false },
  ] };
const b64 = s => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
let issued = null;
const token = () => b64('{"alg":"HS256","typ":"JWT"}') + '.' +
  b64(JSON.stringify({ sub: '1', roles: ['ROLE_USER'], iat: now(), exp: now() + 600, kind: 'access' })) +
  '.' + b64('sig-' + Math.random());
const json = (status, body, extra) => new Response(JSON.stringify(body),
  { status, headers: Object.assign({ 'content-type': 'application/json', 'date': new Date().toUTCString() }, extra || {}) });
const authed = req => issued !== null && req.headers.get('x-access-token') === issued;
const unauthorized = () => json(401, { message: 'Unauthorized!', code: 'session_ended' });
const checkPassword = async req => {
  state.contentTypes.push(req.headers.get('content-type'));
  const body = await req.json();
  state.bodies.push(body);
  if (globalThis.fakeThrottled) return [body, json(429, { message: 'Too many attempts.' }, { 'retry-after': '7' })];
  if (body.currentPassword !== user.password)
    return [body, json(403, { message: 'The current password is not correct.', code: 'wrong_password' })];
  return [body, null];
};
const fake = async function (input, init) {
  const req = input instanceof Request ? input : new Request(input, init);
  const path = new URL(req.url, location.href).pathname;
  if (path === '/api/auth/refreshtoken') {
    state.refreshes++;
    if (!state.session) return json(403, { message: 'Refresh token is not in database!' });
    issued = token();
    return json(200, { accessToken: issued, tokenType: 'Bearer', expiresIn: 600, refreshExpiresIn: 86000 });
  }
  if (path === '/api/auth/signin') {
    const b = await req.json();
    if (b.username !== user.name || b.password !== user.password) return json(401, { message: 'Invalid username or password.' });
    state.session = user.name; issued = token();
    return json(200, { id: 1, username: 'alice', email: 'alice@example.org', roles: ['ROLE_USER'], accessToken: issued,
      tokenType: 'Bearer', expiresIn: 600, refreshExpiresIn: 86400 });
  }
  if (path === '/api/auth/signout') { state.signouts++; state.session = null; issued = null; return json(200, { message: 'Signed out.' }); }
  if (path === '/api/auth/sessions') {
    if (!authed(req)) return unauthorized();
    return json(200, { sessions: state.sessions.map(s => Object.assign({ createdAt: now() - 60, lastUsedAt: now(), expiresAt: now() + 86000 }, s)) });
  }
  if (path.startsWith('/api/auth/sessions/') && req.method === 'DELETE') {
    if (!authed(req)) return unauthorized();
    const id = path.slice('/api/auth/sessions/'.length);
    state.ended.push(id);
    state.sessions = state.sessions.filter(s => s.id !== id);
    return json(200, { message: 'Session ended.' });
  }
  if (path === '/api/auth/password' && req.method === 'POST') {
    if (!authed(req)) return unauthorized();
    state.passwordCalls++;
    const [body, refused] = await checkPassword(req);
    if (refused) return refused;
    if (body.newPassword === body.currentPassword)
      return json(400, { message: 'The new password must differ from the current one.', code: 'password_unchanged' });
    if (body.newPassword.includes('weak'))
      return json(400, { message: 'This password is too easy to guess.', code: 'invalid_password' });
    user.password = body.newPassword;
    state.sessions = state.sessions.filter(s => s.current);
    return json(200, { message: 'Password changed. Your other sessions were signed out.' });
  }
  if (path === '/api/auth/signout-others' && req.method === 'POST') {
    if (!authed(req)) return unauthorized();
    state.others++;
    state.sessions = state.sessions.filter(s => s.current);
    return json(200, { message: 'Your other sessions were signed out.' });
  }
  if (path === '/api/auth/signout-all' && req.method === 'POST') {
    if (!authed(req)) return unauthorized();
    state.all++;
    state.sessions = []; state.session = null; issued = null;
    return json(200, { message: "You've been signed out everywhere!" });
  }
  if (path === '/api/auth/account' && req.method === 'DELETE') {
    if (!authed(req)) return unauthorized();
    state.deletes++;
    const [, refused] = await checkPassword(req);
    if (refused) return refused;
    state.deleted = true; state.sessions = []; state.session = null; issued = null;
    return json(200, { message: 'Your account was deleted.' });
  }
  if (path === '/api/test/all') return new Response('Public Content.', { status: 200 });
  return new Response('not found', { status: 404 });
};
return [fake, state];
"#;

/// One mounted app (a tab); the first one of a page installs the fake server, and restores
/// `fetch` and clears storage when dropped.
impl Mounted {
    /// Mounts the app at `path` in cookie mode, this browser signed in as alice (the fake's
    /// cookie and, as after a real sign-in, the token-free profile hint in storage).
    fn at(path: &str) -> Mounted {
        Self::with(path, StorageMode::Cookie, None)
    }

    /// Like [`Mounted::at`] in `mode`, the app's root `width_px` wide when given.
    fn with(path: &str, mode: StorageMode, width_px: Option<u32>) -> Mounted {
        storage::clear_all();
        let hint = UserInfo {
            id: "1".into(),
            username: "alice".into(),
            email: String::new(),
            roles: vec![],
        };
        let local = web_sys::window().unwrap().local_storage().unwrap().unwrap();
        local
            .set_item(keys::PROFILE, &serde_json::to_string(&hint).unwrap())
            .unwrap();
        if mode == StorageMode::Compat {
            // The tutorial's `user` object, its access token expired: the restore refreshes.
            let now_s = (js_sys::Date::now() / 1000.0) as i64;
            let expired = browser_support::jwt(now_s - 3_600, now_s - 3_000);
            let user = [
                r#"{"id":1,"username":"alice","email":"a@x.io","roles":["ROLE_USER"],"accessToken":""#,
                &expired,
                r#"","refreshToken":"rt-1"}"#,
            ]
            .concat();
            local.set_item(keys::USER, &user).unwrap();
        }
        go(path);
        let (state, original) = fake_fetch(FAKE_SERVER, &"alice".into());
        let config = AppConfig {
            storage_mode: mode,
            ..AppConfig::default()
        };
        Mounted::mount(config, state, Some(Some(original)), width_px)
    }

    /// Another tab of the same browser on the same fake server (mounted at the current path).
    fn another_tab(&self) -> Mounted {
        Mounted::mount(AppConfig::default(), self.state.clone(), None, None)
    }

    fn submit(&self, selector: &str) {
        let form = self.find(selector).expect(selector);
        let ev = web_sys::Event::new("submit").unwrap();
        ev.init_event_with_bubbles_and_cancelable("submit", true, true);
        form.dispatch_event(&ev).unwrap();
    }

    fn click(&self, selector: &str) {
        let el = self.find(selector).expect(selector);
        el.dyn_ref::<web_sys::HtmlElement>().unwrap().click();
    }

    /// The texts of every element matching `selector`.
    fn texts(&self, selector: &str) -> Vec<String> {
        let list = self.root.query_selector_all(selector).unwrap();
        (0..list.length())
            .filter_map(|i| list.get(i))
            .map(|n| n.text_content().unwrap_or_default().trim().to_string())
            .collect()
    }

    /// The inline error of the input `id` (its `aria-describedby` element), if shown.
    fn field_error(&self, id: &str) -> Option<String> {
        let input = self.find(&["#", id].concat())?;
        let err = input.get_attribute("aria-describedby")?;
        Some(self.text_of(&["#", &err].concat()))
    }

    fn signed_in(&self) -> bool {
        self.texts("nav button").iter().any(|t| t == "Log out")
    }

    async fn profile_loaded(&self) {
        self.until("the profile with its sessions", |m| {
            m.find("[data-testid=profile-username]").is_some()
                && m.find("[data-testid=sessions]").is_some()
        })
        .await;
    }

    async fn password_form(&self) {
        self.until("the change-password form", |m| {
            m.find("[data-testid=password-form]").is_some()
        })
        .await;
    }
}

fn set_throttled(on: bool) {
    js_sys::Reflect::set(&window(), &"fakeThrottled".into(), &on.into()).unwrap();
}

#[wasm_bindgen_test]
async fn the_profile_leads_to_the_change_password_page() {
    let m = Mounted::at("/profile");
    m.profile_loaded().await;
    m.click("[data-testid=account] a[href='/profile/password']");
    m.password_form().await;
    assert_eq!(m.path(), "/profile/password");
}

#[wasm_bindgen_test]
async fn change_password_validates_inline_before_anything_is_sent() {
    let m = Mounted::at("/profile/password");
    m.password_form().await;
    assert_eq!(
        m.field_error("current-password"),
        None,
        "errors before a submit"
    );
    m.submit("[data-testid=password-form]");
    m.until("the inline errors", |m| {
        m.field_error("new-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("current-password").as_deref(),
        Some("Enter your current password.")
    );
    // Sign-up's rule, word for word.
    assert_eq!(
        m.field_error("new-password").as_deref(),
        Some("The password must be at least 8 characters long.")
    );
    m.type_into("#current-password", "alice-password");
    m.type_into("#new-password", "a-long-new-password");
    m.type_into("#confirm-password", "a-long-new-passwort");
    m.until("the mismatch", |m| {
        m.field_error("confirm-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("confirm-password").as_deref(),
        Some("The two new passwords do not match.")
    );
    assert_eq!(m.field_error("current-password"), None);
    assert_eq!(m.field_error("new-password"), None);
    m.submit("[data-testid=password-form]");
    m.idle(50).await;
    assert_eq!(m.counter("passwordCalls"), 0.0, "an invalid form was sent");
}

#[wasm_bindgen_test]
async fn change_password_shows_each_refusal_next_to_its_field() {
    let m = Mounted::at("/profile/password");
    m.password_form().await;
    let attempt = |current: &str, new: &str| {
        m.type_into("#current-password", current);
        m.type_into("#new-password", new);
        m.type_into("#confirm-password", new);
        m.submit("[data-testid=password-form]");
    };
    let calls = |n: f64| move |m: &Mounted| m.counter("passwordCalls") == n;

    attempt("not-her-password", "a-long-new-password");
    m.until("the first answer", calls(1.0)).await;
    m.until("the wrong password at its field", |m| {
        m.field_error("current-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("current-password").as_deref(),
        Some("The current password is not correct.")
    );
    assert_eq!(m.field_error("new-password"), None);

    attempt("alice-password", "alice-password");
    m.until("the second answer", calls(2.0)).await;
    m.until("unchanged at the new password", |m| {
        m.field_error("new-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("new-password").as_deref(),
        Some("The new password must differ from the current one.")
    );
    assert_eq!(m.field_error("current-password"), None);

    attempt("alice-password", "weak-but-long-enough");
    m.until("the third answer", calls(3.0)).await;
    m.until("too weak at the new password", |m| {
        m.field_error("new-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("new-password").as_deref(),
        Some("This password is too easy to guess.")
    );

    set_throttled(true);
    attempt("alice-password", "a-long-new-password");
    m.until("the fourth answer", calls(4.0)).await;
    m.until("the wait at the current password", |m| {
        m.field_error("current-password").is_some()
    })
    .await;
    set_throttled(false);
    assert_eq!(
        m.field_error("current-password").as_deref(),
        Some("Too many attempts. Try again in 7 s.")
    );
    assert!(m.signed_in(), "a refusal signed the user out");
    assert_eq!(m.counter("signouts"), 0.0);
}

#[wasm_bindgen_test]
async fn a_changed_password_says_so_and_this_session_stays_signed_in() {
    let m = Mounted::at("/profile/password");
    m.password_form().await;
    m.type_into("#current-password", "alice-password");
    m.type_into("#new-password", "a-long-new-password");
    m.type_into("#confirm-password", "a-long-new-password");
    m.submit("[data-testid=password-form]");
    m.until("the success message", |m| {
        m.find("[data-testid=password-success]").is_some()
    })
    .await;
    assert_eq!(
        m.text_of("[data-testid=password-success]"),
        "Password changed. Your other sessions were signed out."
    );
    let body = m.array("bodies").get(0);
    let field = |name: &str| js_sys::Reflect::get(&body, &name.into()).unwrap();
    assert_eq!(field("currentPassword"), JsValue::from("alice-password"));
    assert_eq!(field("newPassword"), JsValue::from("a-long-new-password"));
    assert_eq!(
        m.array("contentTypes").get(0),
        JsValue::from("application/json")
    );
    m.idle(100).await;
    assert!(m.signed_in(), "the change signed this session out");
    assert_eq!(m.counter("signouts"), 0.0);
    assert_eq!(m.path(), "/profile/password");
}

#[wasm_bindgen_test]
async fn signing_out_the_other_devices_asks_first_then_lists_this_session_only() {
    let m = Mounted::at("/profile");
    m.profile_loaded().await;
    m.until("three sessions", |m| {
        m.texts("[data-testid=end-session]").len() == 3
    })
    .await;
    m.click("[data-testid=sign-out-others]");
    m.until("the confirmation", |m| {
        m.find("[data-testid=confirm-sign-out-others]").is_some()
    })
    .await;
    assert_eq!(m.counter("others"), 0.0, "sent before the confirmation");
    m.click("[data-testid=confirm-sign-out-others] button.btn-secondary");
    m.until("the confirmation to close", |m| {
        m.find("[data-testid=confirm-sign-out-others]").is_none()
    })
    .await;
    assert_eq!(m.counter("others"), 0.0, "Cancel sent it");

    m.click("[data-testid=sign-out-others]");
    m.until("the confirmation again", |m| {
        m.find("[data-testid=confirm-sign-out-others]").is_some()
    })
    .await;
    m.click("[data-testid=confirm-sign-out-others] [data-testid=confirm-yes]");
    m.until("the success message", |m| {
        m.find("[data-testid=account-success]").is_some()
    })
    .await;
    assert_eq!(
        m.text_of("[data-testid=account-success]"),
        "Your other sessions were signed out."
    );
    assert_eq!(m.counter("others"), 1.0);
    m.until("the list read again", |m| {
        m.texts("[data-testid=end-session]") == ["End session on Chrome on Linux"]
    })
    .await;
    assert!(m.signed_in());
}

#[wasm_bindgen_test]
async fn signing_out_everywhere_asks_first_then_signs_out_every_tab_with_the_reason() {
    let a = Mounted::at("/profile");
    a.profile_loaded().await;
    let b = a.another_tab();
    b.profile_loaded().await;
    a.click("[data-testid=sign-out-everywhere]");
    a.until("the confirmation", |m| {
        m.find("[data-testid=confirm-sign-out-everywhere]")
            .is_some()
    })
    .await;
    a.idle(50).await;
    assert_eq!(a.counter("all"), 0.0, "sent before the confirmation");
    assert!(a.signed_in() && b.signed_in());
    a.click("[data-testid=confirm-sign-out-everywhere] [data-testid=confirm-yes]");
    a.until("tab A's login page with the reason", |m| {
        m.find("[data-testid=login-notice]").is_some()
    })
    .await;
    assert_eq!(
        a.text_of("[data-testid=login-notice]"),
        "You signed out on every device."
    );
    b.until("tab B's login page with the reason", |m| {
        m.find("[data-testid=login-notice]").is_some()
    })
    .await;
    let notice = b.text_of("[data-testid=login-notice]");
    assert!(
        notice.contains("another tab") && notice.contains("every device"),
        "{notice}"
    );
    assert!(!a.signed_in() && !b.signed_in());
    assert_eq!(a.counter("all"), 1.0);
    // The server ended the session already: no tab sends a sign-out of its own.
    a.idle(100).await;
    assert_eq!(a.counter("signouts"), 0.0);
    drop(b);
}

#[wasm_bindgen_test]
async fn deleting_the_account_asks_for_the_password_then_signs_out_with_the_reason() {
    let m = Mounted::at("/profile");
    m.profile_loaded().await;
    m.click("[data-testid=delete-account]");
    m.until("the confirmation form", |m| {
        m.find("[data-testid=confirm-delete-account]").is_some()
    })
    .await;
    m.submit("[data-testid=confirm-delete-account]");
    m.until("the missing password", |m| {
        m.field_error("delete-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("delete-password").as_deref(),
        Some("Enter your password to confirm.")
    );
    assert_eq!(m.counter("deletes"), 0.0, "sent without a password");

    m.type_into("#delete-password", "not-her-password");
    m.submit("[data-testid=confirm-delete-account]");
    m.until("the refusal at the password", |m| {
        m.counter("deletes") == 1.0 && m.field_error("delete-password").is_some()
    })
    .await;
    assert_eq!(
        m.field_error("delete-password").as_deref(),
        Some("The current password is not correct.")
    );
    assert!(m.signed_in(), "a refusal signed the user out");

    m.type_into("#delete-password", "alice-password");
    m.submit("[data-testid=confirm-delete-account]");
    m.until("the login page with the reason", |m| {
        m.find("[data-testid=login-notice]").is_some()
    })
    .await;
    assert_eq!(
        m.text_of("[data-testid=login-notice]"),
        "Your account was deleted."
    );
    assert_eq!(
        js_sys::Reflect::get(&m.state, &"deleted".into()).unwrap(),
        JsValue::TRUE
    );
    assert_eq!(m.counter("signouts"), 0.0);
}

#[wasm_bindgen_test]
async fn each_session_button_names_its_device_and_ending_this_one_asks_first() {
    let m = Mounted::at("/profile");
    m.profile_loaded().await;
    m.until("three sessions", |m| {
        m.texts("[data-testid=end-session]").len() == 3
    })
    .await;
    assert_eq!(
        m.texts("[data-testid=end-session]"),
        [
            "End session on Chrome on Linux",
            "End session on Firefox on Windows",
            "End session on Safari on iPhone",
        ]
    );
    // Another device's session ends at once.
    let buttons = m
        .root
        .query_selector_all("[data-testid=end-session]")
        .unwrap();
    let firefox: web_sys::HtmlElement = buttons.get(1).unwrap().dyn_into().unwrap();
    firefox.click();
    m.until("Firefox's session gone", |m| {
        m.texts("[data-testid=end-session]").len() == 2
    })
    .await;
    assert_eq!(m.array("ended").to_vec(), [JsValue::from("s2")]);

    // This session: a confirmation first, and Cancel keeps it.
    m.click("[data-testid=end-session]");
    m.until("the confirmation", |m| {
        m.find("[data-testid=confirm-end-current]").is_some()
    })
    .await;
    m.idle(50).await;
    assert!(m.signed_in(), "ended before the confirmation");
    assert_eq!(m.counter("signouts"), 0.0);
    m.click("[data-testid=confirm-end-current] button.btn-secondary");
    m.until("the button back", |m| {
        m.texts("[data-testid=end-session]")
            .first()
            .map(String::as_str)
            == Some("End session on Chrome on Linux")
    })
    .await;
    assert!(m.signed_in());

    m.click("[data-testid=end-session]");
    m.until("the confirmation again", |m| {
        m.find("[data-testid=confirm-end-current]").is_some()
    })
    .await;
    m.click("[data-testid=confirm-end-current] [data-testid=confirm-yes]");
    m.until("the login page", |m| m.path().starts_with("/login"))
        .await;
    assert_eq!(m.counter("signouts"), 1.0);
    assert_eq!(
        m.array("ended").length(),
        1,
        "this session went by sign-out"
    );
}

#[wasm_bindgen_test]
async fn the_sessions_table_fits_a_375_px_screen() {
    // The real stylesheet, in a 375 px wide app: the sessions card's container query stacks the
    // rows.
    let document = window().document().unwrap();
    let style = document.create_element("style").unwrap();
    style.set_text_content(Some(include_str!("../static/style.css")));
    document.head().unwrap().append_child(&style).unwrap();
    let m = Mounted::with("/profile", StorageMode::Cookie, Some(375));
    m.profile_loaded().await;
    m.until("three sessions", |m| {
        m.texts("[data-testid=end-session]").len() == 3
    })
    .await;
    let card = m.find(".sessions-card").unwrap();
    let table = m.find("[data-testid=sessions]").unwrap();
    let row = m.find("[data-testid=sessions] tbody tr").unwrap();
    let display = js_sys::Function::new_with_args("e", "return getComputedStyle(e).display;")
        .call1(&JsValue::NULL, &row)
        .unwrap()
        .as_string()
        .unwrap_or_default();
    let widths = [
        m.root.scroll_width(),
        m.root.client_width(),
        card.scroll_width(),
        card.client_width(),
        table.scroll_width(),
    ];
    style.remove();
    assert_eq!(display, "block", "rows are not stacked");
    assert_eq!(widths[1], 375);
    assert!(
        widths[0] <= widths[1] && widths[2] <= widths[3] && widths[4] <= widths[3],
        "something is wider than the screen: root {} of {}, card {} of {}, table {}",
        widths[0],
        widths[1],
        widths[2],
        widths[3],
        widths[4]
    );
}

#[wasm_bindgen_test]
async fn compat_mode_has_no_account_actions() {
    let m = Mounted::with("/profile", StorageMode::Compat, None);
    m.until("the profile", |m| {
        m.find("[data-testid=profile-username]").is_some()
    })
    .await;
    m.idle(50).await;
    assert!(m.find("[data-testid=account]").is_none(), "{}", m.text());
    assert!(!m.text().contains("Change password"));
    drop(m);
    let m = Mounted::with("/profile/password", StorageMode::Compat, None);
    m.until("the page", |m| {
        m.find("[data-testid=password-unavailable]").is_some()
    })
    .await;
    assert!(m.find("[data-testid=password-form]").is_none());
}
