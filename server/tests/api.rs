//! The contract and the [S] cases of SECURITY.md, through `app(state).oneshot(..)`, on SQLite and
//! (when `SESSION_API_TEST_PG_URL` is set) on PostgreSQL.

mod common;

use api_types::{messages, AccessClaims, ACCESS_TOKEN_KIND};
use common::{s, Backend, TestApp, APP_ORIGIN, PASSWORD};
use jwt_compact::alg::{Hs256, Hs256Key, Hs384, Hs384Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions};
use serde_json::json;
use session_api::keys::Keys;
use session_api::metrics::RefreshOutcome;

on_both_backends!(
    signup_then_signin_returns_the_contract_fields,
    signup_reports_taken_username_and_email,
    signup_rejects_invalid_fields_saying_which,
    requested_roles_are_ignored_unless_open_role_signup_is_on,
    unknown_user_and_wrong_password_get_the_same_answer,
    failed_logins_are_throttled_per_account_with_retry_after,
    an_attacker_from_one_address_cannot_lock_the_owner_out,
    failed_logins_are_throttled_per_ip,
    content_routes_answer_by_role,
    missing_token_is_403_and_a_query_string_token_is_ignored,
    authorization_header_variants_are_rejected,
    expired_access_token_gets_the_expired_message,
    tampered_and_foreign_tokens_are_rejected,
    tokens_with_wrong_claims_are_rejected,
    refresh_rotates_and_a_retry_within_grace_gets_the_same_successor,
    a_rotated_token_gets_the_same_successor_until_that_successor_is_presented,
    a_client_that_never_stores_rotated_tokens_stays_signed_in,
    an_ancestor_presented_after_its_successor_was_used_revokes_the_family,
    an_ancestor_presented_within_grace_gets_the_active_token,
    an_ended_sessions_access_token_is_refused_at_once,
    a_new_sign_in_replaces_the_browsers_old_family,
    refresh_errors_use_the_contract_messages_without_internals,
    rotation_never_extends_the_absolute_lifetime,
    idle_refresh_token_expires,
    signout_revokes_the_family_and_expires_the_cookie,
    cookie_mode_keeps_the_refresh_token_in_a_host_cookie_only,
    remember_me_off_gets_a_browser_session_cookie_through_rotation,
    cross_site_refresh_and_signout_are_rejected_and_nothing_rotates,
    cookie_family_cannot_be_refreshed_in_body_mode,
    sessions_are_listed_and_ended_by_their_owner_only,
    password_change_revokes_every_family_and_older_access_tokens,
    deleted_user_tokens_stop_working,
    malformed_bodies_get_json_4xx_on_every_endpoint,
    database_unavailable_is_503_not_401,
    logout_racing_refresh_ends_revoked,
    cors_allows_only_configured_origins,
    metrics_count_refresh_outcomes_and_statuses,
    sessions_survive_a_server_restart,
    every_signin_starts_a_new_family,
);

async fn signup_then_signin_returns_the_contract_fields(b: Backend) {
    let app = TestApp::new(&b).await;
    let r = app.signup("alice").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"message": messages::REGISTERED}));
    let r = app.signin("alice").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["id"].is_i64());
    assert_eq!(v["username"], "alice");
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["roles"], json!(["ROLE_USER"]));
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["expiresIn"], 900);
    assert_eq!(v["refreshExpiresIn"], 7 * 86400);
    assert_eq!(s(&v, "accessToken").split('.').count(), 3);
    assert!(s(&v, "refreshToken").len() >= 22);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.header("date").is_some());
    assert!(r.refresh_cookie().is_none(), "body mode sets no cookie");
    let user = app
        .get_with_token("/api/test/user", &s(&v, "accessToken"))
        .await;
    assert_eq!(
        (user.status.as_u16(), user.text()),
        (200, messages::USER_CONTENT.to_owned())
    );
    assert!(user.header("date").is_some());
    let bearer = app
        .get(
            "/api/test/user",
            &[("authorization", &format!("Bearer {}", s(&v, "accessToken")))],
        )
        .await;
    assert_eq!(bearer.status, 200);
}

async fn signup_reports_taken_username_and_email(b: Backend) {
    let app = TestApp::new(&b).await;
    assert_eq!(app.signup("bob").await.status, 200);
    let r = app
        .post(
            "/api/auth/signup",
            json!({"username": "bob", "email": "other@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (400, messages::USERNAME_TAKEN.to_owned())
    );
    let r = app
        .post(
            "/api/auth/signup",
            json!({"username": "bobby", "email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (400, messages::EMAIL_TAKEN.to_owned())
    );
}

async fn signup_rejects_invalid_fields_saying_which(b: Backend) {
    let app = TestApp::new(&b).await;
    let cases = [
        (
            json!({"username": "ab", "email": "a@b.io", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "bad name", "email": "a@b.io", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "okname", "email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"username": "okname", "email": "a@b.io", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "okname", "email": "a@b.io", "password": "x".repeat(129)}),
            "password",
        ),
        (json!({"username": "okname", "email": "a@b.io"}), "password"),
        (json!({"email": "a@b.io", "password": PASSWORD}), "username"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/auth/signup", body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.message().contains(field), "{body} -> {}", r.message());
    }
    // Nothing was created by the rejected requests.
    assert_eq!(app.signup("okname").await.status, 200);
}

async fn requested_roles_are_ignored_unless_open_role_signup_is_on(b: Backend) {
    let closed = TestApp::new(&b).await;
    assert_eq!(
        closed
            .signup_with_roles("mallory", Some(vec!["admin", "moderator"]))
            .await
            .status,
        200
    );
    let v = closed.signin("mallory").await.json();
    assert_eq!(v["roles"], json!(["ROLE_USER"]));
    let admin = closed
        .get_with_token("/api/test/admin", &s(&v, "accessToken"))
        .await;
    assert_eq!(
        (admin.status.as_u16(), admin.message()),
        (403, messages::REQUIRE_ADMIN.to_owned())
    );

    let open = TestApp::with(&b, |s| s.open_role_signup = true).await;
    assert_eq!(
        open.signup_with_roles("boss", Some(vec!["admin"]))
            .await
            .status,
        200
    );
    let v = open.signin("boss").await.json();
    assert_eq!(v["roles"], json!(["ROLE_USER", "ROLE_ADMIN"]));
    let r = open
        .signup_with_roles("nobody", Some(vec!["superuser"]))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("superuser"));
}

async fn unknown_user_and_wrong_password_get_the_same_answer(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("carol").await;
    let before = app.state.passwords().verifications();
    let wrong = app
        .post(
            "/api/auth/signin",
            json!({"username": "carol", "password": "wrong-password"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/signin",
            json!({"username": "nobody", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.json().get("accessToken").is_none());
    // The unknown user cost an argon2id verification too (against the dummy hash).
    assert_eq!(app.state.passwords().verifications() - before, 2);
}

async fn failed_logins_are_throttled_per_account_with_retry_after(b: Backend) {
    let app = TestApp::with(&b, |s| s.throttle.per_account = 3).await;
    app.signup("dave").await;
    app.signup("erin").await;
    for i in 0..3 {
        let r = app
            .signin_from("dave", "wrong-password", [10, 0, 0, i])
            .await;
        assert_eq!(r.status, 401);
    }
    // Even the right password is refused while the account is throttled, from any IP.
    let r = app.signin_from("dave", PASSWORD, [10, 9, 9, 9]).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    assert!(!r.message().is_empty());
    // Another account is not affected.
    assert_eq!(
        app.signin_from("erin", PASSWORD, [10, 0, 0, 1])
            .await
            .status,
        200
    );
    // After the window the account works again.
    app.advance_secs(15 * 60 + 1);
    assert_eq!(
        app.signin_from("dave", PASSWORD, [10, 9, 9, 9])
            .await
            .status,
        200
    );
    assert!(
        app.metric("session_api_signins_total{outcome=\"throttled\"}")
            .await
            >= 1
    );
}

/// Anyone can type someone else's username: an attacker's failures from one address slow that
/// address down (growing delays, Retry-After) but never lock the owner out from theirs.
async fn an_attacker_from_one_address_cannot_lock_the_owner_out(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("owner").await;
    let attacker = [203, 0, 113, 66];
    let (mut tried, mut waits, mut waited) = (0, Vec::new(), 0);
    // As fast as the server lets it, for one 15-minute window.
    while waited < 15 * 60 {
        let r = app.signin_from("owner", "wrong-password", attacker).await;
        match r.status.as_u16() {
            401 => tried += 1,
            429 => {
                let wait: i64 = r.header("retry-after").unwrap().parse().unwrap();
                if waits.is_empty() {
                    // Even the right password waits from the attacker's address.
                    let right = app.signin_from("owner", PASSWORD, attacker).await;
                    assert_eq!(right.status, 429);
                }
                waits.push(wait);
                waited += wait;
                app.advance_secs(wait);
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(
        (5..=16).contains(&tried),
        "{tried} guesses from one address in one window"
    );
    assert!(
        waits.windows(2).all(|w| w[1] == 2 * w[0]),
        "delays double: {waits:?}"
    );
    // The owner, from their own address, signs in at once, every time.
    for _ in 0..3 {
        assert_eq!(
            app.signin_from("owner", PASSWORD, [198, 51, 100, 7])
                .await
                .status,
            200
        );
    }
}

async fn failed_logins_are_throttled_per_ip(b: Backend) {
    let app = TestApp::with(&b, |s| s.throttle.per_ip = 4).await;
    app.signup("frank").await;
    for i in 0..4 {
        app.signin_from(&format!("ghost{i}"), "wrong-password", [192, 0, 2, 1])
            .await;
    }
    assert_eq!(
        app.signin_from("frank", PASSWORD, [192, 0, 2, 1])
            .await
            .status,
        429
    );
    assert_eq!(
        app.signin_from("frank", PASSWORD, [192, 0, 2, 2])
            .await
            .status,
        200
    );
}

async fn content_routes_answer_by_role(b: Backend) {
    let app = TestApp::with(&b, |s| s.open_role_signup = true).await;
    let all = app.get("/api/test/all", &[]).await;
    assert_eq!(
        (all.status.as_u16(), all.text()),
        (200, messages::PUBLIC_CONTENT.to_owned())
    );
    let user = app.user("plain").await;
    app.signup_with_roles("moddy", Some(vec!["moderator"]))
        .await;
    let moddy = app.signin("moddy").await.json();
    app.signup_with_roles("admina", Some(vec!["admin"])).await;
    let admina = app.signin("admina").await.json();
    let t = |v: &serde_json::Value| s(v, "accessToken");

    let r = app.get_with_token("/api/test/mod", &t(&user)).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::REQUIRE_MODERATOR.to_owned())
    );
    let r = app.get_with_token("/api/test/admin", &t(&user)).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::REQUIRE_ADMIN.to_owned())
    );
    let r = app.get_with_token("/api/test/mod", &t(&moddy)).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (200, messages::MODERATOR_CONTENT.to_owned())
    );
    let r = app.get_with_token("/api/test/admin", &t(&moddy)).await;
    assert_eq!(r.status, 403);
    let r = app.get_with_token("/api/test/admin", &t(&admina)).await;
    assert_eq!(
        (r.status.as_u16(), r.text()),
        (200, messages::ADMIN_CONTENT.to_owned())
    );
    // As in the tutorial, admin does not imply moderator.
    assert_eq!(
        app.get_with_token("/api/test/mod", &t(&admina))
            .await
            .status,
        403
    );
}

async fn missing_token_is_403_and_a_query_string_token_is_ignored(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("henry").await;
    let r = app.get("/api/test/user", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::NO_TOKEN.to_owned())
    );
    let tok = s(&v, "accessToken");
    for q in [
        format!("?token={tok}"),
        format!("?x-access-token={tok}"),
        format!("?access_token={tok}"),
    ] {
        let r = app.get(&format!("/api/test/user{q}"), &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.message()),
            (403, messages::NO_TOKEN.to_owned()),
            "{q}"
        );
    }
}

async fn authorization_header_variants_are_rejected(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("irene").await;
    let tok = s(&v, "accessToken");
    let bearer = format!("Bearer {tok}");
    let other = app.user("jack").await;
    let other_bearer = format!("Bearer {}", s(&other, "accessToken"));
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", "Basic aXJlbmU6cGFzc3dvcmQ=")],
        vec![("authorization", tok.as_str())],
        vec![
            ("authorization", bearer.as_str()),
            ("authorization", bearer.as_str()),
        ],
        vec![
            ("authorization", bearer.as_str()),
            ("authorization", other_bearer.as_str()),
        ],
        vec![
            ("x-access-token", tok.as_str()),
            ("x-access-token", tok.as_str()),
        ],
        vec![
            ("x-access-token", tok.as_str()),
            ("authorization", other_bearer.as_str()),
        ],
        vec![("x-access-token", "")],
        vec![("authorization", "Bearer not.a.jwt")],
    ];
    for h in cases {
        let r = app.get("/api/test/user", &h).await;
        assert_eq!(r.status, 401, "{h:?}");
        assert_eq!(r.message(), messages::UNAUTHORIZED, "{h:?}");
    }
    let r = app
        .get(
            "/api/test/user",
            &[
                ("x-access-token", tok.as_str()),
                ("authorization", bearer.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "the same token in both headers is fine");
}

async fn expired_access_token_gets_the_expired_message(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("kate").await;
    app.advance_secs(15 * 60 + 20);
    assert_eq!(
        app.get_with_token("/api/test/user", &s(&v, "accessToken"))
            .await
            .status,
        200,
        "within leeway"
    );
    app.advance_secs(20);
    let r = app
        .get_with_token("/api/test/user", &s(&v, "accessToken"))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (401, messages::ACCESS_EXPIRED.to_owned())
    );
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

async fn tampered_and_foreign_tokens_are_rejected(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("leo").await;
    let tok = s(&v, "accessToken");
    let parts: Vec<&str> = tok.split('.').collect();
    let payload: serde_json::Value = serde_json::from_slice(&unb64(parts[1])).unwrap();
    let mut bad = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        bad.push(format!("{header}.{}.", parts[1]));
        bad.push(format!("{header}.{}", parts[1]));
    }
    bad.push(format!("{}.{}.", parts[0], parts[1]));
    // Claims edited (more roles), original signature kept.
    let mut edited = payload.clone();
    edited["roles"] = json!(["ROLE_USER", "ROLE_ADMIN"]);
    bad.push(format!(
        "{}.{}.{}",
        parts[0],
        b64(edited.to_string().as_bytes()),
        parts[2]
    ));
    // Re-signed by another key, and with another algorithm.
    let other = Keys::new(&[9u8; 32], "session-api", "yew-session");
    let now = app.state.now_ms();
    bad.push(other.issue_access(1, &["ROLE_ADMIN".into()], "x", now, 900));
    let claims: Claims<AccessClaims> = serde_json::from_value(payload.clone()).unwrap();
    bad.push(
        Hs384
            .token(&Header::empty(), &claims, &Hs384Key::new([42u8; 32]))
            .unwrap(),
    );
    bad.push(
        Hs256
            .token(&Header::empty(), &claims, &Hs256Key::new([42u8; 32]))
            .unwrap(),
    );
    for t in &bad {
        let r = app.get_with_token("/api/test/user", t).await;
        assert_eq!(
            (r.status.as_u16(), r.message()),
            (401, messages::UNAUTHORIZED.to_owned()),
            "{t}"
        );
    }
    let r = app.get_with_token("/api/test/admin", &bad[9]).await;
    assert_eq!(r.status, 401);
}

async fn tokens_with_wrong_claims_are_rejected(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("mia").await;
    let id = v["id"].as_i64().unwrap();
    let keys = app.state.keys().clone();
    let now = chrono::DateTime::from_timestamp_millis(app.state.now_ms()).unwrap();
    let opts = TimeOptions::new(chrono::Duration::seconds(0), move || now);
    let good = AccessClaims {
        sub: Some(id.to_string()),
        roles: vec!["ROLE_USER".into()],
        iss: Some(keys.issuer().into()),
        aud: Some(keys.audience().into()),
        kind: Some(ACCESS_TOKEN_KIND.into()),
        // A live session's id: tokens of ended (or unknown) sessions are refused.
        sid: Some(v_sid(&app, &s(&v, "accessToken"))),
        ..AccessClaims::default()
    };
    let sign = |c: AccessClaims| {
        keys.sign(&Claims::new(c).set_duration_and_issuance(&opts, chrono::Duration::seconds(900)))
    };
    assert_eq!(
        app.get_with_token("/api/test/user", &sign(good.clone()))
            .await
            .status,
        200,
        "control"
    );
    let variants = [
        AccessClaims {
            iss: Some("someone-else".into()),
            ..good.clone()
        },
        AccessClaims {
            iss: None,
            ..good.clone()
        },
        AccessClaims {
            aud: Some("other-app".into()),
            ..good.clone()
        },
        AccessClaims {
            aud: None,
            ..good.clone()
        },
        AccessClaims {
            sub: None,
            ..good.clone()
        },
        AccessClaims {
            sub: Some("not-a-number".into()),
            ..good.clone()
        },
        AccessClaims {
            kind: Some("refresh".into()),
            ..good.clone()
        },
        AccessClaims {
            kind: None,
            ..good.clone()
        },
    ];
    for c in variants {
        let r = app.get_with_token("/api/test/user", &sign(c.clone())).await;
        assert_eq!(r.status, 401, "{c:?}");
    }
    // No exp at all; iat and nbf far in the future.
    let no_exp = keys.sign(&Claims::new(good.clone()));
    assert_eq!(
        app.get_with_token("/api/test/user", &no_exp).await.status,
        401
    );
    let later = now + chrono::Duration::hours(1);
    let future_opts = TimeOptions::new(chrono::Duration::seconds(0), move || later);
    let future_iat = keys.sign(
        &Claims::new(good.clone())
            .set_duration_and_issuance(&future_opts, chrono::Duration::seconds(900)),
    );
    assert_eq!(
        app.get_with_token("/api/test/user", &future_iat)
            .await
            .status,
        401
    );
    let future_nbf = keys.sign(
        &Claims::new(good.clone())
            .set_duration_and_issuance(&opts, chrono::Duration::seconds(900))
            .set_not_before(later),
    );
    assert_eq!(
        app.get_with_token("/api/test/user", &future_nbf)
            .await
            .status,
        401
    );
}

async fn refresh_rotates_and_a_retry_within_grace_gets_the_same_successor(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("nina").await;
    let t0 = s(&v, "refreshToken");
    let r1 = app.refresh(&t0).await;
    assert_eq!(r1.status, 200, "{}", r1.text());
    assert_eq!(r1.header("cache-control").as_deref(), Some("no-store"));
    let j1 = r1.json();
    let t1 = s(&j1, "refreshToken");
    assert_ne!(t1, t0, "rotated");
    assert_eq!(j1["tokenType"], "Bearer");
    assert_eq!(j1["expiresIn"], 900);
    assert_eq!(
        app.get_with_token("/api/test/user", &s(&j1, "accessToken"))
            .await
            .status,
        200
    );
    app.advance_secs(3);
    let r2 = app.refresh(&t0).await;
    assert_eq!(r2.status, 200, "retry within grace");
    assert_eq!(s(&r2.json(), "refreshToken"), t1, "same successor");
    let fam = v_sid(&app, &s(&j1, "accessToken"));
    assert_eq!(
        app.state.db().active_tokens_in_family(&fam).await.unwrap(),
        1
    );
    assert_eq!(
        app.state.metrics().refresh_count(RefreshOutcome::Repeated),
        1
    );
    // The successor rotates normally.
    let r3 = app.refresh(&t1).await;
    assert_eq!(r3.status, 200);
    assert_eq!(
        app.state.db().active_tokens_in_family(&fam).await.unwrap(),
        1
    );
}

fn v_sid(app: &TestApp, access: &str) -> String {
    app.state
        .keys()
        .verify_access(access, app.state.now_ms())
        .unwrap()
        .sid
        .unwrap()
}

/// A lost answer retried long after: the successor was never presented, so the same successor
/// comes back (for as long as the family lives), and nothing is revoked.
async fn a_rotated_token_gets_the_same_successor_until_that_successor_is_presented(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("olga").await;
    let t0 = s(&v, "refreshToken");
    let t1 = s(&app.refresh(&t0).await.json(), "refreshToken");
    let fam = v_sid(&app, &s(&v, "accessToken"));
    for wait in [6, 20, 3600] {
        app.advance_secs(wait);
        let again = app.refresh(&t0).await;
        assert_eq!(again.status, 200, "{wait}s later: {}", again.text());
        assert_eq!(s(&again.json(), "refreshToken"), t1, "the same successor");
    }
    assert_eq!(
        app.state.db().family_revoked(&fam).await.unwrap(),
        Some(false)
    );
    assert_eq!(
        app.state.db().active_tokens_in_family(&fam).await.unwrap(),
        1
    );
    assert_eq!(
        app.refresh(&t1).await.status,
        200,
        "the successor rotates normally"
    );
}

/// A client that never stores rotated tokens (the tutorial's own) keeps presenting its sign-in
/// token: it gets the same successor every time and is never logged out.
async fn a_client_that_never_stores_rotated_tokens_stays_signed_in(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("vue").await;
    let t0 = s(&v, "refreshToken");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        app.advance_secs(15 * 60);
        let r = app.refresh(&t0).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        seen.insert(s(&j, "refreshToken"));
        assert_eq!(
            app.get_with_token("/api/test/user", &s(&j, "accessToken"))
                .await
                .status,
            200
        );
    }
    assert_eq!(seen.len(), 1, "always the same successor");
}

/// An ancestor presented after its successor was presented, outside the grace window, is
/// reuse: the family is revoked and the refusal says so (`refresh_token_reused`), also to the
/// legitimate holder of the newer token; the user's other sessions go on.
async fn an_ancestor_presented_after_its_successor_was_used_revokes_the_family(b: Backend) {
    let app = TestApp::new(&b).await;
    let victim = app.user("paul").await;
    let other_session = app.signin("paul").await.json();
    let t0 = s(&victim, "refreshToken");
    let t1 = s(&app.refresh(&t0).await.json(), "refreshToken");
    let t2 = s(&app.refresh(&t1).await.json(), "refreshToken");
    app.advance_secs(6);
    let replay = app.refresh(&t0).await;
    assert_eq!(
        replay.json(),
        json!({"message": messages::REFRESH_NOT_IN_DB, "code": "refresh_token_reused"})
    );
    assert_eq!(replay.status, 403);
    let r = app.refresh(&t2).await;
    assert_eq!(
        r.status, 403,
        "family revoked: the newest token is dead too"
    );
    assert_eq!(r.json()["code"], "refresh_token_reused");
    let fam = v_sid(&app, &s(&victim, "accessToken"));
    assert_eq!(
        app.state.db().family_revoked(&fam).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        app.refresh(&s(&other_session, "refreshToken")).await.status,
        200
    );
    assert_eq!(
        app.metric("session_api_refreshes_total{outcome=\"reuse_detected\"}")
            .await,
        1
    );
}

/// Tabs racing: an ancestor presented within the grace window of its own rotation, after its
/// successor was already used, walks on to the family's active token instead of revoking.
async fn an_ancestor_presented_within_grace_gets_the_active_token(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("rita").await;
    let t0 = s(&v, "refreshToken");
    let t1 = s(&app.refresh(&t0).await.json(), "refreshToken");
    let t2 = s(&app.refresh(&t1).await.json(), "refreshToken");
    let t3 = s(&app.refresh(&t2).await.json(), "refreshToken");
    app.advance_secs(3);
    let late = app.refresh(&t0).await;
    assert_eq!(late.status, 200, "{}", late.text());
    assert_eq!(s(&late.json(), "refreshToken"), t3, "the active token");
    assert_eq!(app.state.metrics().refresh_count(RefreshOutcome::Grace), 1);
    let fam = v_sid(&app, &s(&v, "accessToken"));
    assert_eq!(
        app.state.db().family_revoked(&fam).await.unwrap(),
        Some(false)
    );
    assert_eq!(
        app.state.db().active_tokens_in_family(&fam).await.unwrap(),
        1
    );
}

/// Ending a session ends its access tokens at once (not when they expire): after sign-out, after
/// "End this session" and after reuse revocation the token is refused with `session_ended`,
/// while the user's other sessions keep working.
async fn an_ended_sessions_access_token_is_refused_at_once(b: Backend) {
    let app = TestApp::new(&b).await;
    let keep = app.user("uma").await;
    let refused = |r: &common::Resp| {
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"message": messages::UNAUTHORIZED, "code": "session_ended"})
        );
    };
    // Signed out.
    let s1 = app.signin("uma").await.json();
    let a1 = s(&s1, "accessToken");
    assert_eq!(app.get_with_token("/api/test/user", &a1).await.status, 200);
    let r = app
        .post(
            "/api/auth/signout",
            json!({"refreshToken": s(&s1, "refreshToken")}),
        )
        .await;
    assert_eq!(r.status, 200);
    refused(&app.get_with_token("/api/test/user", &a1).await);
    refused(&app.get_with_token("/api/auth/sessions", &a1).await);
    // Ended from another device's sessions list.
    let s2 = app.signin("uma").await.json();
    let a2 = s(&s2, "accessToken");
    let sid2 = v_sid(&app, &a2);
    let r = app
        .send(
            "DELETE",
            &format!("/api/auth/sessions/{sid2}"),
            &[("x-access-token", &s(&keep, "accessToken"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    refused(&app.get_with_token("/api/test/user", &a2).await);
    // Revoked for reuse.
    let s3 = app.signin("uma").await.json();
    let t0 = s(&s3, "refreshToken");
    let t1 = s(&app.refresh(&t0).await.json(), "refreshToken");
    let r1 = app.refresh(&t1).await.json();
    let a3 = s(&r1, "accessToken");
    assert_eq!(app.get_with_token("/api/test/user", &a3).await.status, 200);
    app.advance_secs(6);
    assert_eq!(app.refresh(&t0).await.status, 403);
    refused(&app.get_with_token("/api/test/user", &a3).await);
    // The session that was never ended goes on.
    assert_eq!(
        app.get_with_token("/api/test/user", &s(&keep, "accessToken"))
            .await
            .status,
        200
    );
}

async fn refresh_errors_use_the_contract_messages_without_internals(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("quinn").await;
    let t0 = s(&v, "refreshToken");
    let required = [
        json!({}),
        json!({"refreshToken": null}),
        json!({"refreshToken": ""}),
    ];
    for body in required {
        let r = app.post("/api/auth/refreshtoken", body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.message()),
            (403, messages::REFRESH_REQUIRED.to_owned()),
            "{body}"
        );
    }
    let ten_kb = "A".repeat(10 * 1024);
    let truncated = t0[..t0.len() - 5].to_owned();
    for t in [
        "random-token-value".to_owned(),
        truncated,
        ten_kb,
        "0b9c6f1e-1f0e-4c55-9d1a-2d6e0c8a9b7f".to_owned(),
        "'; DROP TABLE users; --".to_owned(),
        "\u{0}\u{ffff}".to_owned(),
    ] {
        let r = app.refresh(&t).await;
        assert_eq!(r.status, 403, "{t}");
        assert_eq!(
            r.json(),
            json!({"message": messages::REFRESH_NOT_IN_DB, "code": "refresh_token_unknown"})
        );
    }
    let r = app
        .post("/api/auth/refreshtoken", json!({"refreshToken": 12345}))
        .await;
    assert!(r.status.is_client_error());
    assert!(r.json()["message"].is_string());
    assert_eq!(
        app.refresh(&t0).await.status,
        200,
        "the real token was never touched"
    );
    app.advance_secs(8 * 86400);
    let r = app
        .refresh(&s(&app.signin("quinn").await.json(), "refreshToken"))
        .await;
    assert_eq!(r.status, 200);
}

async fn rotation_never_extends_the_absolute_lifetime(b: Backend) {
    let app = TestApp::with(&b, |s| {
        s.refresh_ttl_ms = 100_000;
        s.refresh_idle_ms = 60_000;
    })
    .await;
    let v = app.user("rita").await;
    assert_eq!(v["refreshExpiresIn"], 100);
    let mut t = s(&v, "refreshToken");
    let mut last = 100;
    for _ in 0..4 {
        app.advance_secs(20);
        let r = app.refresh(&t).await;
        assert_eq!(r.status, 200);
        let j = r.json();
        let left = j["refreshExpiresIn"].as_i64().unwrap();
        assert!(left < last, "{left} < {last}");
        last = left;
        t = s(&j, "refreshToken");
    }
    assert_eq!(last, 20);
    app.advance_secs(21);
    let r = app.refresh(&t).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::REFRESH_EXPIRED.to_owned())
    );
}

async fn idle_refresh_token_expires(b: Backend) {
    let app = TestApp::with(&b, |s| s.refresh_idle_ms = 60_000).await;
    let v = app.user("sam").await;
    app.advance_secs(59);
    let t1 = s(
        &app.refresh(&s(&v, "refreshToken")).await.json(),
        "refreshToken",
    );
    app.advance_secs(61);
    let r = app.refresh(&t1).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::REFRESH_EXPIRED.to_owned())
    );
    assert!(
        app.metric("session_api_refreshes_total{outcome=\"expired\"}")
            .await
            >= 1
    );
}

async fn signout_revokes_the_family_and_expires_the_cookie(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("tina").await;
    let t0 = s(&v, "refreshToken");
    let r = app
        .post("/api/auth/signout", json!({"refreshToken": t0}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.message().len() > 3);
    let c = r.refresh_cookie().expect("cookie expired");
    assert!(c.contains("Max-Age=0"), "{c}");
    let r = app.refresh(&t0).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::REFRESH_NOT_IN_DB.to_owned())
    );
    // Cookie mode: signout with the header and the cookie.
    let c = app
        .signin_cookie("tina")
        .await
        .refresh_cookie_value()
        .unwrap();
    let cookie = format!("__Host-refresh={c}");
    let r = app
        .send(
            "POST",
            "/api/auth/signout",
            &[("cookie", &cookie), ("x-refresh-transport", "cookie")],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.refresh_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(app.refresh_cookie(&c, &[]).await.status, 403);
    // Unknown tokens get the same answer.
    assert_eq!(
        app.post("/api/auth/signout", json!({"refreshToken": "unknown"}))
            .await
            .status,
        200
    );
}

async fn cookie_mode_keeps_the_refresh_token_in_a_host_cookie_only(b: Backend) {
    let app = TestApp::with(&b, |s| s.refresh_ttl_ms = 3_600_000).await;
    app.signup("uma").await;
    let r = app.signin_cookie("uma").await;
    assert_eq!(r.status, 200);
    assert!(r.json().get("refreshToken").is_none(), "never in the body");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let c = r.refresh_cookie().unwrap();
    for part in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=3600",
    ] {
        assert!(c.split("; ").any(|p| p == part), "{part} in {c}");
    }
    assert!(!c.contains("Domain="));
    app.advance_secs(100);
    let r = app
        .refresh_cookie(
            &r.refresh_cookie_value().unwrap(),
            &[("origin", APP_ORIGIN)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("refreshToken").is_none());
    assert!(
        r.refresh_cookie().unwrap().contains("Max-Age=3500"),
        "remaining lifetime"
    );
}

async fn remember_me_off_gets_a_browser_session_cookie_through_rotation(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("uri").await;
    let r = app
        .send(
            "POST",
            "/api/auth/signin",
            &[
                ("x-refresh-transport", "cookie"),
                ("x-refresh-persist", "session"),
            ],
            Some(json!({"username": "uri", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.refresh_cookie().unwrap();
    assert!(!c.contains("Max-Age"), "a session cookie: {c}");
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(c.split("; ").any(|p| p == part), "{part} in {c}");
    }
    // The rotated cookie stays a session cookie when the client says so again...
    let value = r.refresh_cookie_value().unwrap();
    let r = app
        .refresh_cookie(&value, &[("x-refresh-persist", "session")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.refresh_cookie().unwrap().contains("Max-Age"));
    // ...and without the header it is the family's persistent cookie.
    let r = app
        .refresh_cookie(&r.refresh_cookie_value().unwrap(), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.refresh_cookie().unwrap().contains("Max-Age="));
}

async fn cross_site_refresh_and_signout_are_rejected_and_nothing_rotates(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("vera").await;
    let c = app
        .signin_cookie("vera")
        .await
        .refresh_cookie_value()
        .unwrap();
    let cookie = format!("__Host-refresh={c}");
    for path in ["/api/auth/refreshtoken", "/api/auth/signout"] {
        // Wrong Origin, with the header.
        let r = app
            .send(
                "POST",
                path,
                &[
                    ("cookie", &cookie),
                    ("x-refresh-transport", "cookie"),
                    ("origin", "http://evil.test"),
                ],
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 403, "{path} wrong origin");
        // No custom header (a form post or a fetch without preflight).
        let r = app
            .send("POST", path, &[("cookie", &cookie)], Some(json!({})))
            .await;
        assert_eq!(r.status, 403, "{path} no header");
        // text/plain body, as a cross-site form can send.
        let r = app
            .raw(
                "POST",
                path,
                &[("cookie", &cookie), ("content-type", "text/plain")],
                "refreshToken=x",
            )
            .await;
        assert_eq!(r.status, 403, "{path} text/plain");
        let r = app
            .raw(
                "POST",
                path,
                &[
                    ("cookie", &cookie),
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", "http://evil.test"),
                ],
                "a=b",
            )
            .await;
        assert_eq!(r.status, 403, "{path} form");
    }
    assert!(
        app.metric("session_api_refreshes_total{outcome=\"csrf_rejected\"}")
            .await
            >= 8
    );
    // A cross-site sign-in (login CSRF) is refused too.
    let r = app
        .send(
            "POST",
            "/api/auth/signin",
            &[
                ("origin", "http://evil.test"),
                ("x-refresh-transport", "cookie"),
            ],
            Some(json!({"username": "vera", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.refresh_cookie().is_none());
    // Nothing was rotated or revoked: the cookie still refreshes, once.
    let r = app.refresh_cookie(&c, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.state.metrics().refresh_count(RefreshOutcome::Grace), 0);
}

/// Signing in again from a browser that still holds a live family's refresh cookie (the
/// session-end notice's "Sign in again") replaces that family instead of orphaning it.
async fn a_new_sign_in_replaces_the_browsers_old_family(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("vera").await;
    let first = app.signin_cookie("vera").await;
    let old = first.refresh_cookie_value().unwrap();
    let old_sid = v_sid(&app, &s(&first.json(), "accessToken"));
    let again = app
        .send(
            "POST",
            "/api/auth/signin",
            &[
                ("x-refresh-transport", "cookie"),
                ("cookie", &format!("__Host-refresh={old}")),
            ],
            Some(json!({"username": "vera", "password": PASSWORD})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        app.state.db().family_revoked(&old_sid).await.unwrap(),
        Some(true)
    );
    assert_eq!(app.refresh_cookie(&old, &[]).await.status, 403);
    let new = again.refresh_cookie_value().unwrap();
    assert_eq!(app.refresh_cookie(&new, &[]).await.status, 200);
    let listed = app
        .get_with_token("/api/auth/sessions", &s(&again.json(), "accessToken"))
        .await
        .json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
}

async fn cookie_family_cannot_be_refreshed_in_body_mode(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("wade").await;
    let c = app
        .signin_cookie("wade")
        .await
        .refresh_cookie_value()
        .unwrap();
    let r = app.refresh(&c).await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (403, messages::REFRESH_NOT_IN_DB.to_owned())
    );
    // And a body-mode token does not work as a cookie.
    let v = app.signin("wade").await.json();
    assert_eq!(
        app.refresh_cookie(&s(&v, "refreshToken"), &[]).await.status,
        403
    );
    // Both still work in their own mode.
    assert_eq!(app.refresh_cookie(&c, &[]).await.status, 200);
    assert_eq!(app.refresh(&s(&v, "refreshToken")).await.status, 200);
}

async fn sessions_are_listed_and_ended_by_their_owner_only(b: Backend) {
    let app = TestApp::new(&b).await;
    let a1 = app.user("xena").await;
    let a2 = app
        .send(
            "POST",
            "/api/auth/signin",
            &[(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            )],
            Some(json!({"username": "xena", "password": PASSWORD})),
        )
        .await
        .json();
    let other = app.user("yuri").await;
    let at = |v: &serde_json::Value| s(v, "accessToken");
    let r = app.get_with_token("/api/auth/sessions", &at(&a1)).await;
    assert_eq!(r.status, 200);
    let list = r.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().any(|s| s["device"] == "Firefox on Linux"));
    assert!(list
        .iter()
        .all(|s| s["transport"] == "body" && s["expiresAt"].as_i64() > s["createdAt"].as_i64()));
    let second = v_sid(&app, &at(&a2));
    // Another user cannot end it.
    let r = app
        .send(
            "DELETE",
            &format!("/api/auth/sessions/{second}"),
            &[("x-access-token", &at(&other))],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(app.refresh(&s(&a2, "refreshToken")).await.status, 200);
    // The owner can.
    let a2b = app.signin("xena").await.json();
    let third = v_sid(&app, &at(&a2b));
    let r = app
        .send(
            "DELETE",
            &format!("/api/auth/sessions/{third}"),
            &[("x-access-token", &at(&a1))],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.refresh(&s(&a2b, "refreshToken")).await.status, 403);
    assert_eq!(app.get("/api/auth/sessions", &[]).await.status, 403);
}

async fn password_change_revokes_every_family_and_older_access_tokens(b: Backend) {
    let app = TestApp::new(&b).await;
    let s1 = app.user("zack").await;
    let s2 = app.signin("zack").await.json();
    let id = s1["id"].as_i64().unwrap();
    app.advance_secs(2);
    let hash = app
        .state
        .passwords()
        .hash("a-brand-new-password".into())
        .await
        .unwrap();
    assert!(app
        .state
        .db()
        .change_password(id, &hash, app.state.now_ms())
        .await
        .unwrap());
    for sess in [&s1, &s2] {
        assert_eq!(app.refresh(&s(sess, "refreshToken")).await.status, 403);
        assert_eq!(
            app.get_with_token("/api/test/user", &s(sess, "accessToken"))
                .await
                .status,
            401
        );
    }
    app.advance_secs(1);
    let r = app
        .post(
            "/api/auth/signin",
            json!({"username": "zack", "password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.get_with_token("/api/test/user", &s(&r.json(), "accessToken"))
            .await
            .status,
        200
    );
}

async fn deleted_user_tokens_stop_working(b: Backend) {
    let app = TestApp::with(&b, |s| s.open_role_signup = true).await;
    app.signup_with_roles("root", Some(vec!["admin"])).await;
    let v = app.signin("root").await.json();
    assert_eq!(
        app.get_with_token("/api/test/admin", &s(&v, "accessToken"))
            .await
            .status,
        200
    );
    assert!(app
        .state
        .db()
        .delete_user(v["id"].as_i64().unwrap())
        .await
        .unwrap());
    let r = app
        .get_with_token("/api/test/admin", &s(&v, "accessToken"))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.message()),
        (401, messages::UNAUTHORIZED.to_owned())
    );
    assert_eq!(app.refresh(&s(&v, "refreshToken")).await.status, 403);
}

async fn malformed_bodies_get_json_4xx_on_every_endpoint(b: Backend) {
    let app = TestApp::with(&b, |s| s.max_body = 4096).await;
    let big = format!("{{\"username\":\"{}\"}}", "x".repeat(10_000));
    for path in [
        "/api/auth/signup",
        "/api/auth/signin",
        "/api/auth/refreshtoken",
        "/api/auth/signout",
    ] {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("content-type", "application/json")],
                "{not json".into(),
            ),
            (vec![("content-type", "application/json")], "".into()),
            (vec![("content-type", "application/json")], "[1,2,3]".into()),
            (
                vec![("content-type", "application/json")],
                "{\"username\": 5}".into(),
            ),
            (vec![("content-type", "text/plain")], "{}".into()),
            (vec![], "{}".into()),
            (vec![("content-type", "application/json")], big.clone()),
        ];
        for (h, body) in cases {
            let r = app.raw("POST", path, &h, body.clone()).await;
            assert!(
                r.status.is_client_error(),
                "{path} {h:?} {} -> {}",
                &body[..body.len().min(20)],
                r.status
            );
            assert!(r.json()["message"].is_string(), "{path}: {}", r.text());
            assert!(!r.text().contains("sqlx") && !r.text().contains("panicked"));
        }
    }
    let r = app.send("GET", "/api/auth/signin", &[], None).await;
    assert_eq!(r.status, 405);
    assert!(r.json()["message"].is_string());
    let r = app.get("/api/nope", &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["message"].is_string());
}

async fn database_unavailable_is_503_not_401(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("ursula").await;
    app.state.db().close().await;
    let r = app
        .get_with_token("/api/test/user", &s(&v, "accessToken"))
        .await;
    assert_eq!(r.status, 503);
    assert!(r.json()["message"].is_string());
    assert_eq!(app.refresh(&s(&v, "refreshToken")).await.status, 503);
    assert_eq!(app.signin("ursula").await.status, 503);
    assert!(!app
        .signin("ursula")
        .await
        .text()
        .to_lowercase()
        .contains("pool"));
    // The database comes back (a new pool on the same data): nothing was half-written.
    let back = app.restarted().await;
    assert_eq!(back.refresh(&s(&v, "refreshToken")).await.status, 200);
}

async fn logout_racing_refresh_ends_revoked(b: Backend) {
    let app = TestApp::new(&b).await;
    app.signup("racer").await;
    for _ in 0..5 {
        let v = app.signin("racer").await.json();
        let t = s(&v, "refreshToken");
        let fam = v_sid(&app, &s(&v, "accessToken"));
        let (a, b2) = tokio::join!(
            app.refresh(&t),
            app.post("/api/auth/signout", json!({"refreshToken": t.clone()}))
        );
        assert_eq!(b2.status, 200);
        assert!(a.status == 200 || a.status == 403, "{}", a.status);
        assert_eq!(
            app.state.db().family_revoked(&fam).await.unwrap(),
            Some(true)
        );
        if a.status == 200 {
            assert_eq!(app.refresh(&s(&a.json(), "refreshToken")).await.status, 403);
        }
    }
}

async fn cors_allows_only_configured_origins(b: Backend) {
    let app = TestApp::new(&b).await;
    let pre = |origin: &'static str| {
        let app = &app;
        async move {
            app.send(
                "OPTIONS",
                "/api/auth/refreshtoken",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "content-type,x-refresh-transport",
                    ),
                ],
                None,
            )
            .await
        }
    };
    let ok = pre(APP_ORIGIN).await;
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some(APP_ORIGIN)
    );
    assert_eq!(
        ok.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let evil = pre("http://evil.test").await;
    assert!(evil.header("access-control-allow-origin").is_none());
    let r = app
        .get("/api/test/all", &[("origin", "http://evil.test")])
        .await;
    assert!(r.header("access-control-allow-origin").is_none());
    assert_ne!(
        ok.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
}

async fn metrics_count_refresh_outcomes_and_statuses(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("metrica").await;
    app.refresh(&s(&v, "refreshToken")).await;
    app.refresh("nope").await;
    app.get("/api/test/user", &[("x-access-token", "garbage")])
        .await;
    let m = app.metrics().await;
    assert!(
        m.contains("session_api_refreshes_total{outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("session_api_refreshes_total{outcome=\"invalid\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("session_api_signins_total{outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("session_api_http_responses_total{status=\"401\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("session_api_http_responses_total{status=\"403\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("session_api_http_request_duration_seconds_bucket{le=\"+Inf\"}"),
        "{m}"
    );
}

async fn sessions_survive_a_server_restart(b: Backend) {
    let app = TestApp::new(&b).await;
    let v = app.user("phoenix").await;
    let again = app.restarted().await;
    assert_eq!(
        again
            .get_with_token("/api/test/user", &s(&v, "accessToken"))
            .await
            .status,
        200
    );
    assert_eq!(again.refresh(&s(&v, "refreshToken")).await.status, 200);
}

async fn every_signin_starts_a_new_family(b: Backend) {
    let app = TestApp::new(&b).await;
    let v1 = app.user("fam").await;
    let v2 = app.signin("fam").await.json();
    assert_ne!(
        v_sid(&app, &s(&v1, "accessToken")),
        v_sid(&app, &s(&v2, "accessToken"))
    );
    assert_ne!(s(&v1, "refreshToken"), s(&v2, "refreshToken"));
    // Only the SHA-256 of a refresh token is stored.
    let count = |value: String| {
        let pool = app.state.db().pool().clone();
        async move {
            use sqlx::Row;
            sqlx::query(
                "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = $1 OR family_id = $1",
            )
            .bind(value)
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
        }
    };
    let t = s(&v1, "refreshToken");
    assert_eq!(count(t.clone()).await, 0);
    assert_eq!(count(session_api::keys::hash_refresh_token(&t)).await, 1);
}

#[tokio::test]
async fn static_app_has_a_strict_csp_and_an_spa_fallback() {
    let www = tempfile::tempdir().unwrap();
    let html = "<!doctype html><script type=\"module\">import init from '/app.js'; init();</script><body>app</body>";
    std::fs::write(www.path().join("index.html"), html).unwrap();
    std::fs::write(www.path().join("config.json"), "{\"apiBase\":\"\"}").unwrap();
    let dir = www.path().to_owned();
    let app = TestApp::with(&Backend::Sqlite, move |s| s.static_dir = Some(dir)).await;
    for path in ["/", "/profile", "/boards/42"] {
        let r = app.get(path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), html);
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            csp.contains("'sha256-") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
        assert!(r.header("date").is_some());
    }
    let r = app.get("/config.json", &[]).await;
    assert_eq!(r.json(), json!({"apiBase": ""}));
    let r = app.get("/api/unknown", &[]).await;
    assert_eq!(r.status, 404);
    assert!(
        r.json()["message"].is_string(),
        "API paths never fall back to the app"
    );
    let r = app.get("/api/test/all", &[]).await;
    assert_eq!(
        r.header("content-security-policy").as_deref(),
        Some(session_api::web::API_CSP)
    );
}

#[tokio::test]
async fn seed_demo_creates_the_three_accounts_once() {
    let app = TestApp::new(&Backend::Sqlite).await;
    session_api::server::seed_demo(&app.state, "demo-pass-123")
        .await
        .unwrap();
    session_api::server::seed_demo(&app.state, "another-pass")
        .await
        .unwrap();
    let login = |u: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/signin",
                json!({"username": u, "password": "demo-pass-123"}),
            )
            .await
        }
    };
    assert_eq!(login("user").await.json()["roles"], json!(["ROLE_USER"]));
    assert_eq!(
        login("mod").await.json()["roles"],
        json!(["ROLE_USER", "ROLE_MODERATOR"])
    );
    let admin = login("admin").await.json();
    assert_eq!(
        admin["roles"],
        json!(["ROLE_USER", "ROLE_MODERATOR", "ROLE_ADMIN"])
    );
    for p in ["/api/test/user", "/api/test/mod", "/api/test/admin"] {
        assert_eq!(
            app.get_with_token(p, &s(&admin, "accessToken"))
                .await
                .status,
            200,
            "{p}"
        );
    }
}

/// The middleware wraps the whole app (web::Exchange and the tower layers): routed answers,
/// the router's own 404/405, the body limit's 413 and the extractors' refusals all get the
/// security headers, the API CSP and a JSON error body, and every one is counted in /metrics.
#[tokio::test]
async fn every_kind_of_answer_gets_the_security_headers_a_json_error_and_is_counted() {
    let app = TestApp::with(&Backend::Sqlite, |s| s.max_body = 1024).await;
    let big = format!("{{\"username\":\"{}\"}}", "x".repeat(4096));
    let responses = [
        (200, app.get("/api/test/all", &[]).await),
        (403, app.get("/api/test/user", &[]).await),
        (404, app.get("/nowhere", &[]).await),
        (404, app.get("/api/nowhere", &[]).await),
        (405, app.send("PUT", "/api/auth/signin", &[], None).await),
        (
            413,
            app.raw(
                "POST",
                "/api/auth/signin",
                &[("content-type", "application/json")],
                big,
            )
            .await,
        ),
    ];
    for (status, r) in &responses {
        assert_eq!(r.status.as_u16(), *status);
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
            (
                "permissions-policy",
                "camera=(), microphone=(), geolocation=()",
            ),
            ("content-security-policy", session_api::web::API_CSP),
        ] {
            assert_eq!(r.header(name).as_deref(), Some(value), "{status} {name}");
        }
        if *status >= 400 {
            assert!(r.json()["message"].is_string(), "{status}: {}", r.text());
        }
    }
    let m = app.get("/metrics", &[]).await.text();
    for (status, n) in [(200, 1), (403, 1), (404, 2), (405, 1), (413, 1)] {
        let line = format!("session_api_http_responses_total{{status=\"{status}\"}} {n}");
        assert!(m.contains(&line), "{line} in {m}");
    }
}

#[tokio::test]
async fn every_response_carries_a_date_header() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let responses = [
        app.get("/api/test/all", &[]).await,
        app.get("/api/test/user", &[]).await,
        app.get("/nowhere", &[]).await,
        app.send("PUT", "/api/auth/signin", &[], None).await,
        app.post("/api/auth/refreshtoken", json!({"refreshToken": "x"}))
            .await,
        app.get("/metrics", &[]).await,
    ];
    for r in responses {
        let d = r.header("date").expect("Date");
        assert!(httpdate::parse_http_date(&d).is_ok(), "{d}");
    }
}
