//! Starting to use a token, and what a refresh answer does.

use super::*;

// ---- install --------------------------------------------------------------------------------

#[test]
fn sign_in_takes_the_generation_after_every_tabs_and_announces_itself() {
    let mut st = fresh(false);
    st.generation = 4;
    let (gen, effects) = st.install(obtained(Got::SignIn, None), 7);
    assert_eq!(
        gen, 8,
        "above both the seen (4) and the stored (7) generation"
    );
    assert_eq!(st.generation, 8);
    assert!(matches!(
        effects[0],
        Effect::Save(Save::Obtained { remember: true, .. })
    ));
    assert!(matches!(
        broadcasts(&effects)[..],
        [TabMessage::TokenUpdated {
            generation: 8,
            login: true,
            ..
        }]
    ));
    assert_eq!(
        events(&effects),
        [&SessionEvent::LoggedIn {
            username: "ann".into()
        }]
    );
    assert_eq!(effects.last(), Some(&Effect::Reschedule));
    let tl = token(&st)
        .timeline
        .clone()
        .expect("timeline from expiresIn");
    assert_eq!(tl.expires_at_ms, T0 + 60_000.0);
    assert!(tl.refresh_at_ms < tl.expires_at_ms);
}

#[test]
fn a_restore_is_not_a_sign_in_but_other_tabs_hear_of_it_as_one() {
    let mut st = fresh(false);
    let (_, effects) = st.install(obtained(Got::Restore, None), 0);
    assert_eq!(
        events(&effects),
        [&SessionEvent::Restored {
            username: "ann".into()
        }]
    );
    assert!(matches!(
        broadcasts(&effects)[..],
        [TabMessage::TokenUpdated { login: true, .. }]
    ));
}

#[test]
fn a_refresh_after_failures_recovers_once_and_clears_the_trouble() {
    let mut st = signed_in();
    let (_, e) = reply(&mut st, answer(Err(FailureKind::Network)), T0 + 55_000.0);
    assert_eq!(
        events(&e),
        [
            &SessionEvent::RefreshFailed(FailureKind::Network),
            &SessionEvent::Degraded
        ]
    );
    let (r, e) = reply(
        &mut st,
        answer(refreshed("access-2", T0 + 57_000.0)),
        T0 + 57_000.0,
    );
    assert_eq!(r, Ok(2));
    assert_eq!(
        events(&e),
        [
            &SessionEvent::Refreshed {
                generation: 2,
                adopted: false
            },
            &SessionEvent::Recovered
        ]
    );
    assert_eq!(st.trouble(), None);
    assert!(!st.degraded());
    assert!(matches!(
        broadcasts(&e)[..],
        [TabMessage::TokenUpdated {
            generation: 2,
            login: false,
            ..
        }]
    ));
}

#[test]
fn a_refresh_keeps_the_old_refresh_token_when_the_answer_carries_none() {
    let mut st = fresh(true);
    st.install(obtained(Got::SignIn, Some(Area::Local)), 0);
    let _ = reply(&mut st, answer(refreshed("access-2", T0 + 1.0)), T0 + 1.0);
    assert_eq!(token(&st).refresh.as_deref(), Some("refresh-1"));
    assert_eq!(token(&st).area, Some(Area::Local));
}

// ---- failures -------------------------------------------------------------------------------

#[test]
fn transient_failures_back_off_and_say_degraded_once() {
    let mut st = signed_in();
    let now = T0 + 55_000.0;
    let (r, e) = reply(
        &mut st,
        answer(Err(FailureKind::Server { status: 503 })),
        now,
    );
    assert!(r.is_err());
    assert!(events(&e).contains(&&SessionEvent::Degraded));
    let first = st.trouble().cloned().expect("trouble");
    assert_eq!(first.failures, 1);
    assert_eq!(first.retry_at, Some(now + policy::backoff_ms(1, 0.5, None)));
    let (_, e) = reply(&mut st, answer(Err(FailureKind::Timeout)), now + 1_000.0);
    assert!(
        !events(&e).contains(&&SessionEvent::Degraded),
        "degraded already"
    );
    assert_eq!(st.trouble().map(|t| t.failures), Some(2));
    assert!(
        matches!(st.phase, Phase::SignedIn { .. }),
        "the session is kept"
    );
}

#[test]
fn a_429_waits_at_least_retry_after() {
    let mut st = signed_in();
    let kind = FailureKind::RateLimited {
        retry_after_ms: Some(120_000.0),
    };
    let _ = reply(&mut st, answer(Err(kind)), T0);
    assert_eq!(st.trouble().and_then(|t| t.retry_at), Some(T0 + 120_000.0));
}

#[test]
fn an_answer_from_another_epoch_changes_nothing() {
    let mut st = signed_in();
    let before = st.clone();
    let stale = st.epoch - 1;
    let (r, e) = answered(&mut st, answer(refreshed("late", T0)), stale, T0);
    assert_eq!(r, Err(FailureKind::NoSession));
    assert!(e.is_empty());
    assert_eq!(st, before);
}

#[test]
fn verdicts_name_the_reason() {
    let rejected = |code: Option<&str>, message: &str| FailureKind::Rejected {
        status: 403,
        message: message.into(),
        code: code.map(Into::into),
    };
    let end = |r| Verdict::End(r);
    assert_eq!(verdict(&FailureKind::Network, 0, false), Verdict::Transient);
    assert_eq!(verdict(&FailureKind::NoSession, 0, false), Verdict::Void);
    assert_eq!(
        verdict(&rejected(Some("refresh_token_reused"), ""), 0, false),
        end(LogoutReason::ReuseDetected)
    );
    assert_eq!(
        verdict(&rejected(Some("refresh_token_expired"), ""), 0, false),
        end(LogoutReason::Expired)
    );
    assert_eq!(
        verdict(&rejected(Some("x"), ""), 0, true),
        end(LogoutReason::Expired)
    );
    assert_eq!(
        verdict(&rejected(Some("x"), ""), 0, false),
        end(LogoutReason::RefreshRejected)
    );
    assert_eq!(
        verdict(&rejected(None, "Refresh token was expired."), 0, false),
        end(LogoutReason::Expired)
    );
    assert_eq!(
        verdict(&rejected(None, "token revoked"), 0, false),
        end(LogoutReason::ReuseDetected)
    );
    // Unexpected answers are retried, then end the session.
    let odd = FailureKind::Server { status: 404 };
    let last = policy::MAX_UNEXPECTED_ANSWERS - 1;
    assert_eq!(verdict(&odd, last - 1, false), Verdict::Transient);
    assert_eq!(
        verdict(&odd, last, false),
        end(LogoutReason::RefreshRejected)
    );
}

#[test]
fn a_rejected_refresh_ends_the_session_once_and_tells_the_tabs() {
    let mut st = signed_in();
    let kind = FailureKind::Rejected {
        status: 401,
        message: "no".into(),
        code: None,
    };
    let (_, e) = reply(&mut st, answer(Err(kind.clone())), T0);
    assert_eq!(
        events(&e),
        [
            &SessionEvent::RefreshFailed(kind),
            &SessionEvent::LoggedOut {
                reason: LogoutReason::RefreshRejected
            }
        ]
    );
    assert_eq!(broadcasts(&e).len(), 1);
    assert!(!e.iter().any(|x| matches!(x, Effect::SignOutOnServer(_))));
    assert_eq!(
        st.phase,
        Phase::SignedOut {
            reason: Some(LogoutReason::RefreshRejected),
            message: Some(LogoutReason::RefreshRejected.describe().into()),
        }
    );
}
