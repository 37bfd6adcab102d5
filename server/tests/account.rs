//! The account endpoints (issue 14): password change, sign-out of other devices / everywhere,
//! account deletion — through `app(state).oneshot(..)`, on SQLite and PostgreSQL.

mod common;

use api_types::{codes, messages};
use common::{s, Backend, Resp, TestApp, PASSWORD};
use serde_json::{json, Value};

on_both_backends!(
    password_change_ends_other_sessions_and_keeps_this_one,
    a_wrong_current_password_is_refused_and_counted_by_the_throttle,
    password_rule_violations_are_400_with_a_code_and_change_nothing,
    signout_others_keeps_the_current_session_and_ends_the_rest,
    signout_all_ends_every_session_and_clears_the_cookie,
    delete_account_removes_the_user_and_every_session,
    delete_with_a_wrong_password_deletes_nothing,
    every_account_endpoint_needs_an_access_token,
);

const NEW_PASSWORD: &str = "a-brand-new-password";

async fn call(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    app.send(method, path, &[("x-access-token", token)], body)
        .await
}

async fn change(app: &TestApp, token: &str, current: &str, new: &str) -> Resp {
    call(
        app,
        "POST",
        "/api/auth/password",
        token,
        Some(json!({"currentPassword": current, "newPassword": new})),
    )
    .await
}

async fn signin_with(app: &TestApp, user: &str, password: &str) -> Resp {
    app.post(
        "/api/auth/signin",
        json!({"username": user, "password": password}),
    )
    .await
}

/// The access token works (200 on the user content).
async fn works(app: &TestApp, session: &Value) -> bool {
    let r = app
        .get_with_token("/api/test/user", &s(session, "accessToken"))
        .await;
    r.status == 200
}

/// The access token is refused as an ended session, and so is its refresh token.
async fn assert_ended(app: &TestApp, session: &Value, ctx: &str) {
    let r = app
        .get_with_token("/api/test/user", &s(session, "accessToken"))
        .await;
    assert_eq!(r.status, 401, "{ctx}: {}", r.text());
    assert_eq!(r.json()["code"], codes::SESSION_ENDED, "{ctx}");
    if let Some(t) = session["refreshToken"].as_str() {
        let r = app.refresh(t).await;
        assert_eq!(r.status, 403, "{ctx}: {}", r.text());
        assert_eq!(r.json()["code"], codes::SESSION_ENDED, "{ctx}");
    }
}

fn clears_cookie(r: &Resp) -> bool {
    r.refresh_cookie()
        .is_some_and(|c| c.starts_with("__Host-refresh=;") && c.contains("Max-Age=0"))
}

async fn password_change_ends_other_sessions_and_keeps_this_one(b: Backend) {
    let app = TestApp::new(&b).await;
    let current = app.user("pam").await;
    let other = app.signin("pam").await.json();
    let cookie = app.signin_cookie("pam").await;
    let cookie_session = cookie.json();
    let cookie_value = cookie.refresh_cookie_value().unwrap();
    app.advance_secs(2);

    let r = change(&app, &s(&current, "accessToken"), PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.message().is_empty());
    assert!(
        r.refresh_cookie().is_none(),
        "the current session keeps its cookie"
    );

    // The other sessions end at once: access tokens and refresh tokens.
    assert_ended(&app, &other, "other body session").await;
    assert_ended(&app, &cookie_session, "other cookie session").await;
    assert_eq!(app.refresh_cookie(&cookie_value, &[]).await.status, 403);

    // The current session keeps working, and keeps refreshing.
    assert!(works(&app, &current).await, "current access token refused");
    let r = app.refresh(&s(&current, "refreshToken")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(works(&app, &r.json()).await);
    let listed = app
        .get_with_token("/api/auth/sessions", &s(&current, "accessToken"))
        .await
        .json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["sessions"][0]["current"], true);

    // The old password is gone, the new one signs in.
    assert_eq!(signin_with(&app, "pam", PASSWORD).await.status, 401);
    let r = signin_with(&app, "pam", NEW_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(works(&app, &r.json()).await);
}

async fn a_wrong_current_password_is_refused_and_counted_by_the_throttle(b: Backend) {
    let app = TestApp::with(&b, |s| s.throttle.per_account = 3).await;
    let current = app.user("quinn").await;
    let other = app.signin("quinn").await.json();
    let token = s(&current, "accessToken");
    for i in 0..3 {
        let r = change(&app, &token, "not-the-password", NEW_PASSWORD).await;
        assert_eq!(r.status, 403, "attempt {i}: {}", r.text());
        assert_eq!(r.json()["code"], codes::WRONG_PASSWORD);
        assert!(works(&app, &current).await, "the caller's session stays");
    }
    // The limit is reached as with failed sign-ins: even the right password waits now...
    let r = change(&app, &token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    // ...and so does sign-in for that account: the failures are the account's.
    assert_eq!(signin_with(&app, "quinn", PASSWORD).await.status, 429);
    assert!(
        app.metric("session_api_signins_total{outcome=\"invalid\"}")
            .await
            >= 3
    );
    // Nothing changed meanwhile.
    assert!(works(&app, &other).await, "the other session was ended");
    app.advance_secs(15 * 60 + 1);
    assert_eq!(signin_with(&app, "quinn", NEW_PASSWORD).await.status, 401);
    assert_eq!(signin_with(&app, "quinn", PASSWORD).await.status, 200);
}

async fn password_rule_violations_are_400_with_a_code_and_change_nothing(b: Backend) {
    let app = TestApp::new(&b).await;
    let current = app.user("rita").await;
    let other = app.signin("rita").await.json();
    let token = s(&current, "accessToken");
    let long = "x".repeat(129);
    for (new, code, says) in [
        ("short", codes::INVALID_PASSWORD, "at least 8"),
        (long.as_str(), codes::INVALID_PASSWORD, "at most 128"),
        (PASSWORD, codes::PASSWORD_UNCHANGED, "differ"),
    ] {
        let r = change(&app, &token, PASSWORD, new).await;
        assert_eq!(r.status, 400, "{new}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{new}");
        assert!(r.message().contains(says), "{new}: {}", r.message());
    }
    // A missing field, camelCase not honoured, not JSON: a 400 with a message.
    for body in [
        json!({"currentPassword": PASSWORD}),
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    ] {
        let r = call(&app, "POST", "/api/auth/password", &token, Some(body)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(!r.message().is_empty());
    }
    // Nothing changed: both sessions live, the old password signs in, the new one does not.
    assert!(works(&app, &current).await);
    assert!(works(&app, &other).await);
    assert_eq!(app.refresh(&s(&other, "refreshToken")).await.status, 200);
    assert_eq!(signin_with(&app, "rita", NEW_PASSWORD).await.status, 401);
    assert_eq!(signin_with(&app, "rita", PASSWORD).await.status, 200);
}

async fn signout_others_keeps_the_current_session_and_ends_the_rest(b: Backend) {
    let app = TestApp::new(&b).await;
    let current = app.user("sam").await;
    let others = [
        app.signin("sam").await.json(),
        app.signin("sam").await.json(),
    ];
    let bystander = app.user("tess").await;
    let r = call(
        &app,
        "POST",
        "/api/auth/signout-others",
        &s(&current, "accessToken"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.refresh_cookie().is_none(),
        "the current session keeps its cookie"
    );
    for o in &others {
        assert_ended(&app, o, "other session").await;
    }
    assert!(works(&app, &current).await);
    let r = app.refresh(&s(&current, "refreshToken")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = app
        .get_with_token("/api/auth/sessions", &s(&r.json(), "accessToken"))
        .await
        .json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["sessions"][0]["current"], true);
    // Another user's sessions are not touched.
    assert!(works(&app, &bystander).await);
}

async fn signout_all_ends_every_session_and_clears_the_cookie(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("uma").await;
    let signin = app.signin_cookie("uma").await;
    let current = signin.json();
    let cookie = signin.refresh_cookie_value().unwrap();
    let other = app.signin("uma").await.json();
    let bystander = app.user("vic").await;
    let cookie_header = format!("__Host-refresh={cookie}");
    let r = app
        .send(
            "POST",
            "/api/auth/signout-all",
            &[
                ("x-access-token", &s(&current, "accessToken")),
                ("cookie", &cookie_header),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(clears_cookie(&r), "{:?}", r.refresh_cookie());
    // The current access token is refused on the next request, its cookie no longer refreshes.
    assert_ended(&app, &current, "current session").await;
    let r = app.refresh_cookie(&cookie, &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], codes::SESSION_ENDED);
    assert_ended(&app, &other, "other session").await;
    assert!(works(&app, &bystander).await);
    // Signing in again works.
    assert_eq!(app.signin("uma").await.status, 200);
}

async fn delete_account_removes_the_user_and_every_session(b: Backend) {
    let app = TestApp::new(&b).await;
    let current = app.user("wes").await;
    let cookie = app.signin_cookie("wes").await;
    let cookie_session = cookie.json();
    let cookie_value = cookie.refresh_cookie_value().unwrap();
    let bystander = app.user("xena").await;
    let token = s(&current, "accessToken");
    let r = call(
        &app,
        "DELETE",
        "/api/auth/account",
        &token,
        Some(json!({"currentPassword": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(clears_cookie(&r), "{:?}", r.refresh_cookie());
    for sess in [&current, &cookie_session] {
        let r = app
            .get_with_token("/api/test/user", &s(sess, "accessToken"))
            .await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    assert_eq!(app.refresh(&s(&current, "refreshToken")).await.status, 403);
    assert_eq!(app.refresh_cookie(&cookie_value, &[]).await.status, 403);
    assert_eq!(
        app.get_with_token("/api/auth/sessions", &token)
            .await
            .status,
        401
    );
    let r = signin_with(&app, "wes", PASSWORD).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.message(), "Invalid username or password!");
    assert!(works(&app, &bystander).await);
    // The name and the address are free again.
    let r = app.signup("wes").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.message(), messages::REGISTERED);
    assert_eq!(app.signin("wes").await.status, 200);
}

async fn delete_with_a_wrong_password_deletes_nothing(b: Backend) {
    let app = TestApp::new(&b).await;
    let current = app.user("yves").await;
    let other = app.signin("yves").await.json();
    let token = s(&current, "accessToken");
    let r = call(
        &app,
        "DELETE",
        "/api/auth/account",
        &token,
        Some(json!({"currentPassword": "not-the-password"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], codes::WRONG_PASSWORD);
    assert!(r.refresh_cookie().is_none());
    let r = call(&app, "DELETE", "/api/auth/account", &token, Some(json!({}))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    for sess in [&current, &other] {
        assert!(works(&app, sess).await);
        assert_eq!(app.refresh(&s(sess, "refreshToken")).await.status, 200);
    }
    assert_eq!(
        app.signup("yves").await.status,
        400,
        "the user still exists"
    );
    assert_eq!(app.signin("yves").await.status, 200);
}

async fn every_account_endpoint_needs_an_access_token(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("zoe").await;
    let bodies = [
        (
            "POST",
            "/api/auth/password",
            Some(json!({"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})),
        ),
        ("POST", "/api/auth/signout-all", None),
        ("POST", "/api/auth/signout-others", None),
        (
            "DELETE",
            "/api/auth/account",
            Some(json!({"currentPassword": PASSWORD})),
        ),
    ];
    for (method, path, body) in bodies {
        // No token: the API's "No token provided!" (403, as on every protected route).
        let r = app.send(method, path, &[], body.clone()).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert_eq!(r.message(), messages::NO_TOKEN);
        // A token that is not one, or a refresh token in its place: 401.
        for bad in ["garbage", &s(&v, "refreshToken")] {
            let r = call(&app, method, path, bad, body.clone()).await;
            assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        }
    }
    // Nothing happened to the account.
    assert!(works(&app, &v).await);
    assert_eq!(app.refresh(&s(&v, "refreshToken")).await.status, 200);
    assert_eq!(app.signin("zoe").await.status, 200);
}
