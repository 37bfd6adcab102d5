//! Logout, and what another tab says.

use super::*;

// ---- logout ---------------------------------------------------------------------------------

#[test]
fn logout_happens_once_whichever_path_comes_first() {
    let mut st = signed_in();
    let epoch = st.epoch;
    let e = logout::end(&mut st, LogoutReason::UserAction, None, BOTH);
    assert!(matches!(e[0], Effect::Save(Save::Ended { area: None })));
    assert!(matches!(&e[1], Effect::SignOutOnServer(Some(t)) if t.access == "access-1"));
    assert_eq!(st.epoch, epoch + 1);
    let again = logout::end(&mut st, LogoutReason::TokenRejected, None, BOTH);
    assert!(again.is_empty());
    assert_eq!(
        st.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::UserAction)
        }
    );
    assert_eq!(st.epoch, epoch + 1);
}

#[test]
fn expiry_is_announced_before_the_logout() {
    let mut st = signed_in();
    let e = logout::end(&mut st, LogoutReason::Expired, None, BOTH);
    assert_eq!(
        events(&e),
        [
            &SessionEvent::SessionExpired,
            &SessionEvent::LoggedOut {
                reason: LogoutReason::Expired
            }
        ]
    );
}

// ---- other tabs -----------------------------------------------------------------------------

#[test]
fn adopting_another_tabs_token_is_never_broadcast_back() {
    let mut st = signed_in();
    let e = adopt(&mut st, news(5, false), T0, None);
    assert!(broadcasts(&e).is_empty());
    assert_eq!(
        events(&e),
        [&SessionEvent::Refreshed {
            generation: 5,
            adopted: true
        }]
    );
    assert_eq!(token(&st).generation, 5);
    assert_eq!(st.stats.adopted, 1);
    // Older or equal news changes nothing.
    assert!(adopt(&mut st, news(5, false), T0, None).is_empty());
    assert!(adopt(&mut st, news(3, true), T0, None).is_empty());
}

#[test]
fn a_logout_from_another_tab_ends_this_one_without_echo() {
    let mut st = signed_in();
    let msg = TabMessage::LoggedOut {
        from: "tab-b".into(),
        reason: LogoutReason::UserAction,
    };
    let Received::Effects(e) = received(&mut st, msg) else {
        panic!("a logout is carried out");
    };
    assert!(broadcasts(&e).is_empty());
    assert!(!e.iter().any(|x| matches!(x, Effect::SignOutOnServer(_))));
    assert_eq!(
        st.status(),
        SessionStatus::SignedOut {
            reason: Some(LogoutReason::OtherTab)
        }
    );
    assert!(st.message().is_some_and(|m| m.contains("You signed out.")));
}

#[test]
fn signed_out_tabs_adopt_sign_ins_only_and_restoring_tabs_are_restored() {
    let mut st = fresh(false);
    logout::nobody(&mut st);
    assert!(
        adopt(&mut st, news(2, false), T0, None).is_empty(),
        "a stray refresh"
    );
    let e = adopt(&mut st, news(3, true), T0, None);
    assert_eq!(
        events(&e),
        [&SessionEvent::LoggedIn {
            username: "ann".into()
        }]
    );

    let mut st = fresh(true);
    let e = adopt(&mut st, news(3, false), T0, Some("from-storage".into()));
    assert_eq!(
        events(&e),
        [&SessionEvent::Restored {
            username: "ann".into()
        }]
    );
    assert_eq!(token(&st).refresh.as_deref(), Some("from-storage"));
    assert_eq!(token(&st).area, Some(Area::Local));
}

#[test]
fn a_tab_only_session_is_offered_to_a_tab_that_asks_and_kept_in_its_own_storage() {
    let mut st = fresh(true);
    st.install(
        Obtained {
            remember: false,
            ..obtained(Got::SignIn, Some(Area::Session))
        },
        0,
    );
    let ask = TabMessage::SessionWanted {
        from: "tab-b".into(),
    };
    let Received::Effects(e) = received(&mut st, ask) else {
        panic!("offered");
    };
    let offer = broadcasts(&e)[0].clone();
    assert!(matches!(
        &offer,
        TabMessage::TokenUpdated { session_only: true, refresh_token: Some(r), .. } if r == "refresh-1"
    ));
    // The asking tab, still restoring, takes it even at a generation it has seen.
    let mut other = fresh(true);
    other.tab.id = "tab-b".into();
    other.generation = 1;
    let Received::Adopt(n) = received(&mut other, offer) else {
        panic!("adopted");
    };
    let e = adopt(&mut other, n, T0, None);
    assert!(
        matches!(&e[0], Effect::Save(Save::Adopted { token }) if token.area == Some(Area::Session))
    );
}

#[test]
fn token_news_without_a_token_is_read_from_storage_in_compat_mode_only() {
    let msg = || TabMessage::TokenUpdated {
        from: "tab-b".into(),
        generation: 9,
        access_token: String::new(),
        timeline: None,
        user: user(),
        login: false,
        refresh_token: None,
        session_only: false,
        id_token: None,
        bff: None,
    };
    let mut compat = signed_in();
    compat.tab.compat = true;
    assert_eq!(received(&mut compat, msg()), Received::AdoptFromStorage);
    assert_eq!(received(&mut signed_in(), msg()), Received::Ignore);
}
