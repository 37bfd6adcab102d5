//! The engine with an OpenID provider that rotates refresh tokens with no grace (the fake of
//! tests/common/provider.rs, checked against ../shared/OIDC.md by the first test): sign-in through
//! the callback, exactly one refresh per expiry across tabs (also in separate processes), never a
//! refresh token presented twice, one clean logout when the provider refuses, the refresh token
//! kept when a provider does not rotate, revocation and the end-session URL at sign-out.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use api_types::paths;
use common::provider::{oidc_config, APP_ORIGIN, CLIENT_ID};
use common::*;
use yew_session::session::persist::{keys, StoredUser};
use yew_session::session::ports::{Area, HttpRequest, KeyValueStore, Method};
use yew_session::session::{LogoutReason, SessionStatus};

fn stored(tab: &Tab, area: Area) -> Option<StoredUser> {
    tab.storage
        .get(area, keys::USER)
        .map(|t| StoredUser::parse(&t).expect("a readable stored session"))
}

fn refresh_request(token: &str) -> HttpRequest {
    let mut req = HttpRequest::new(Method::Post, format!("{}/token", common::provider::ISSUER));
    req.body = Some(format!(
        "grant_type=refresh_token&refresh_token={token}&client_id={CLIENT_ID}"
    ));
    req
}

/// The fake behaves as ../shared/OIDC.md records oidc-provider: five refreshes of one token ->
/// one 200 and four 400 `invalid_grant`, and the winner's new refresh token is refused too.
#[test]
fn fake_provider_matches_the_record() {
    let w = World::new(Flavor::Provider);
    let tab = w.open_tab(oidc_config());
    w.oidc_login(&tab, "ann", true);
    let token = stored(&tab, Area::Local).unwrap().refresh_token.unwrap();
    drop(tab);
    let answers: Vec<_> = (0..5)
        .map(|_| w.provider().handle(&refresh_request(&token)))
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 400, 400, 400, 400]);
    assert!(
        answers[1].body.contains("\"invalid_grant\""),
        "{}",
        answers[1].body
    );
    let winner: serde_json::Value = serde_json::from_str(&answers[0].body).unwrap();
    let next = winner["refresh_token"].as_str().unwrap();
    assert_eq!(w.provider().handle(&refresh_request(next)).status, 400);
}

#[test]
fn signing_in_at_the_provider_signs_in_every_tab_with_the_id_tokens_user() {
    let w = World::new(Flavor::Provider);
    let a = w.open_tab(oidc_config());
    let b = w.open_tab(oidc_config());
    assert_eq!(w.oidc_login(&a, "admin-ann", true), "/profile");
    w.advance(100.0);
    for t in [&a, &b] {
        assert_eq!(t.engine.status(), SessionStatus::SignedIn, "{}", t.id);
        let user = t.engine.user().unwrap();
        assert_eq!(
            (user.id.as_str(), user.username.as_str()),
            ("admin-ann", "admin-ann")
        );
        assert_eq!(user.roles, ["ROLE_USER", "ROLE_ADMIN"]);
    }
    // Remembered: the session's record is in localStorage (opaque access token, our timeline);
    // the round trip's secrets are gone.
    let record = stored(&a, Area::Local).expect("remembered session");
    assert!(record.access_token.starts_with("opaque-access-"));
    assert!(record.id_token.is_some() && record.timeline.is_some());
    assert_eq!(a.storage.get(Area::Session, keys::OIDC_PENDING), None);
    // The API gets the provider's token as a bearer token.
    let api = b.api.clone();
    let r = w.block_on(async move { api.get_text(paths::TEST_USER).await }, 5_000.0);
    assert_eq!(r.as_deref(), Ok("User Content."));
    let sent = b.transport.sent.borrow();
    let call = sent
        .iter()
        .rfind(|r| r.url.ends_with(paths::TEST_USER))
        .unwrap();
    assert_eq!(
        call.header("authorization"),
        Some(
            format!(
                "Bearer {}",
                b.engine
                    .user()
                    .map(|_| record.access_token.clone())
                    .unwrap()
            )
            .as_str()
        )
    );
}

#[test]
fn the_callback_refuses_another_state_a_provider_error_and_a_replay() {
    let w = World::new(Flavor::Provider);
    let tab = w.open_tab(oidc_config());
    let engine = tab.engine.clone();
    let secrets = yew_session::session::oidc::Secrets {
        verifier: "v".into(),
        challenge: "c".into(),
        state: "the-state".into(),
        nonce: "n".into(),
    };
    let url = engine
        .oidc_sign_in_url(secrets.clone(), APP_ORIGIN, "/admin", false)
        .unwrap();
    assert!(
        url.contains("state=the-state") && url.contains("code_challenge=c"),
        "{url}"
    );
    let e = engine.clone();
    let r = w.block_on(
        async move { e.oidc_complete("?code=x&state=forged").await },
        1_000.0,
    );
    assert!(r.unwrap_err().contains("state mismatch"));
    // The secrets went with the refused answer: the genuine one cannot be replayed later.
    let e = engine.clone();
    let r = w.block_on(
        async move { e.oidc_complete("?code=x&state=the-state").await },
        1_000.0,
    );
    assert!(r.unwrap_err().contains("No sign-in was started"));
    engine
        .oidc_sign_in_url(secrets, APP_ORIGIN, "/admin", false)
        .unwrap();
    let e = engine.clone();
    let r = w.block_on(
        async move {
            e.oidc_complete(
                "?error=access_denied&error_description=End-User%20aborted&state=the-state",
            )
            .await
        },
        1_000.0,
    );
    let why = r.unwrap_err();
    assert!(
        why.contains("access_denied") && why.contains("End-User aborted"),
        "{why}"
    );
    assert_eq!(engine.status(), SessionStatus::SignedOut { reason: None });
    assert_eq!(w.counts().signin, 0, "nothing was exchanged");
}

#[test]
fn k_calls_in_each_of_four_tabs_on_an_expired_token_make_one_refresh() {
    // Also with the tabs in separate processes: storage and messages reach the others late.
    for lag_ms in [0.0, 5.0, 40.0, 99.0, 150.0] {
        let w = World::new(Flavor::Provider);
        let tabs: Vec<Tab> = (0..4).map(|_| w.open_tab(oidc_config())).collect();
        w.oidc_login(&tabs[0], "ann", true);
        w.advance(100.0);
        if lag_ms > 0.0 {
            w.separate_processes(lag_ms);
        }
        w.sleep_jump(3_600_000.0);
        let calls: Vec<_> = tabs
            .iter()
            .flat_map(|t| (0..50).map(move |_| t.api.clone()))
            .map(|api| w.spawn(async move { api.get_text(paths::TEST_USER).await }))
            .collect();
        w.advance(5_000.0);
        let what = format!("storage and messages {lag_ms} ms late");
        assert_eq!(w.counts().refresh, 1, "{what}");
        assert_eq!(w.provider().invalid_grant, 0, "{what}");
        w.assert_each_refresh_token_presented_once(&what);
        let ok = calls
            .iter()
            .filter(|c| matches!(&*c.borrow(), Some(Ok(_))))
            .count();
        assert_eq!(ok, 200, "{what}");
        assert!(tabs.iter().all(|t| t.logged_out_count() == 0), "{what}");
    }
}

#[test]
fn four_tabs_over_five_lifetimes_refresh_once_per_lifetime() {
    let w = World::new(Flavor::Provider);
    let tabs: Vec<Tab> = (0..4).map(|_| w.open_tab(oidc_config())).collect();
    w.oidc_login(&tabs[0], "ann", true);
    w.advance((5 * 60_000 + 1_000) as f64);
    let refreshes = w.counts().refresh;
    assert!(
        (5..=6).contains(&refreshes),
        "{refreshes} refreshes in 5 lifetimes"
    );
    assert_eq!(w.provider().invalid_grant, 0);
    w.assert_each_refresh_token_presented_once("5 lifetimes");
    let gens: Vec<u64> = tabs.iter().map(|t| t.engine.generation()).collect();
    assert!(gens.iter().all(|g| *g == gens[0]), "{gens:?}");
    assert!(tabs.iter().all(|t| t.logged_out_count() == 0));
}

#[test]
fn a_refused_refresh_signs_every_tab_out_once_with_the_reason() {
    let w = World::new(Flavor::Provider);
    let tabs: Vec<Tab> = (0..3).map(|_| w.open_tab(oidc_config())).collect();
    w.oidc_login(&tabs[0], "ann", true);
    // The grant ends at the provider (an admin, another device's replay...).
    let token = stored(&tabs[0], Area::Local)
        .unwrap()
        .refresh_token
        .unwrap();
    let mut revoke = HttpRequest::new(
        Method::Post,
        format!("{}/token/revocation", common::provider::ISSUER),
    );
    revoke.body = Some(format!("token={token}&client_id={CLIENT_ID}"));
    w.provider().handle(&revoke);
    w.advance(61_000.0);
    assert_eq!(
        w.provider().invalid_grant,
        1,
        "one refused refresh, no storm"
    );
    for t in &tabs {
        assert!(
            matches!(
                t.engine.status(),
                SessionStatus::SignedOut { reason: Some(_) }
            ),
            "{}",
            t.id
        );
        assert_eq!(t.logged_out_count(), 1, "{}", t.id);
    }
    assert_eq!(
        tabs[0].engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::RefreshRejected)
        }
    );
    w.advance(120_000.0);
    assert_eq!(w.counts().refresh, 1, "signed-out tabs do not retry");
}

#[test]
fn a_provider_that_does_not_rotate_keeps_the_refresh_token() {
    let w = World::new(Flavor::Provider);
    w.provider().rotate = false;
    let tab = w.open_tab(oidc_config());
    w.oidc_login(&tab, "ann", true);
    let first = stored(&tab, Area::Local).unwrap().refresh_token;
    w.advance((3 * 60_000 + 1_000) as f64);
    assert!(w.counts().refresh >= 3);
    let presented = w.presented_refresh_tokens();
    assert!(presented.iter().all(|p| *p == first), "{presented:?}");
    assert_eq!(stored(&tab, Area::Local).unwrap().refresh_token, first);
    assert_eq!(tab.engine.status(), SessionStatus::SignedIn);
}

#[test]
fn a_refreshed_id_token_naming_another_user_ends_the_session() {
    let w = World::new(Flavor::Provider);
    let tab = w.open_tab(oidc_config());
    w.oidc_login(&tab, "ann", true);
    w.provider().refreshed_sub = Some("mallory".into());
    w.advance(61_000.0);
    assert!(matches!(
        tab.engine.status(),
        SessionStatus::SignedOut { .. }
    ));
    assert_eq!(tab.engine.user(), None);
}

#[test]
fn a_refreshed_id_token_with_another_nonce_is_dropped_and_the_session_kept() {
    let w = World::new(Flavor::Provider);
    let tab = w.open_tab(oidc_config());
    w.oidc_login(&tab, "ann", true);
    let signed_in = stored(&tab, Area::Local).unwrap().id_token.unwrap();
    // The provider repeats the sign-in's nonce (as oidc-provider does): the new ID token is
    // taken.
    w.advance(61_000.0);
    let repeated = stored(&tab, Area::Local).unwrap().id_token.unwrap();
    assert_ne!(
        repeated, signed_in,
        "a refreshed ID token with the sign-in's nonce is kept"
    );
    // Another nonce (Core 12.2 forbids it): that ID token is not taken, the session goes on.
    w.provider().refreshed_nonce = Some("not-the-sign-ins".into());
    let refreshes = w.provider().refreshed;
    w.advance(61_000.0);
    assert!(w.provider().refreshed > refreshes, "refreshed meanwhile");
    assert_eq!(tab.engine.status(), SessionStatus::SignedIn);
    assert_eq!(
        stored(&tab, Area::Local).unwrap().id_token.unwrap(),
        repeated,
        "the refused ID token is dropped; the last good one stays the end-session hint"
    );
}

#[test]
fn signing_out_revokes_the_refresh_token_and_gives_the_end_session_url() {
    let w = World::new(Flavor::Provider);
    let a = w.open_tab(oidc_config());
    let b = w.open_tab(oidc_config());
    w.oidc_login(&a, "ann", true);
    w.advance(61_000.0); // one rotation: the token to revoke is the newest
    let token = stored(&a, Area::Local).unwrap().refresh_token.unwrap();
    let id_token = stored(&a, Area::Local).unwrap().id_token.unwrap();
    let engine = b.engine.clone();
    let url = w
        .block_on(
            async move { engine.logout_at_provider(APP_ORIGIN, false).await },
            15_000.0,
        )
        .expect("the provider has an end-session endpoint");
    assert_eq!(
        url,
        format!(
            "{}/session/end?id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2F&client_id={CLIENT_ID}",
            common::provider::ISSUER
        )
    );
    w.advance(100.0);
    assert_eq!(w.provider().revocations, 1);
    assert_eq!(
        w.provider().replay(&token),
        400,
        "the revoked token is refused"
    );
    for t in [&a, &b] {
        assert!(
            matches!(t.engine.status(), SessionStatus::SignedOut { .. }),
            "{}",
            t.id
        );
    }
    assert_eq!(stored(&a, Area::Local), None);
}

/// An honest limit of no-grace rotation: a refresh whose answer is lost on the way back has
/// rotated the token at the provider, and the only token the app has is the old one. Presenting
/// it revokes the grant, so the session ends — once, with the reason, not in a loop.
#[test]
fn a_lost_refresh_answer_ends_the_session_once_under_no_grace_rotation() {
    let w = World::new(Flavor::Provider);
    let tab = w.open_tab(oidc_config());
    w.oidc_login(&tab, "ann", true);
    w.script_refresh(Scripted::LostAnswer);
    w.advance(120_000.0);
    assert_eq!(w.provider().revoked_by_reuse, 1);
    assert_eq!(tab.logged_out_count(), 1);
    assert_eq!(
        tab.engine.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::RefreshRejected)
        }
    );
    let after = w.counts().refresh;
    w.advance(600_000.0);
    assert_eq!(w.counts().refresh, after);
}
