//! The timer, the online state, requests, and restore plans.

use super::*;

// ---- schedule, online, requests -------------------------------------------------------------

#[test]
fn the_timer_refreshes_when_due_rearms_when_early_and_waits_out_backoff_and_offline() {
    let mut st = signed_in();
    let due = token(&st).timeline.clone().unwrap().refresh_at_ms;
    assert_eq!(schedule::next_due(&st), Some(due));
    assert_eq!(schedule::tick(&st, due - 1.0, false), Tick::Rearm);
    assert_eq!(schedule::tick(&st, due, false), Tick::Refresh(1));
    assert_eq!(
        schedule::tick(&st, due, true),
        Tick::Idle,
        "one in flight already"
    );
    if let Phase::SignedIn { trouble, .. } = &mut st.phase {
        *trouble = Some(Trouble {
            failures: 1,
            unexpected: 0,
            retry_at: Some(due + 5_000.0),
            last: FailureKind::Network,
        });
    }
    assert_eq!(schedule::next_due(&st), Some(due + 5_000.0));
    assert_eq!(schedule::tick(&st, due + 1.0, false), Tick::Idle);
    let e = schedule::set_online(&mut st, false);
    assert!(e.is_empty(), "degraded already");
    assert_eq!(
        schedule::tick(&st, due + 6_000.0, false),
        Tick::Idle,
        "offline"
    );
    schedule::set_online(&mut st, true);
    assert_eq!(
        st.trouble().unwrap().retry_at,
        None,
        "online skips the backoff"
    );
    assert_eq!(schedule::tick(&st, due + 1.0, false), Tick::Refresh(1));
}

#[test]
fn going_offline_and_back_says_degraded_then_recovered() {
    let mut st = signed_in();
    assert_eq!(
        events(&schedule::set_online(&mut st, false)),
        [&SessionEvent::Degraded]
    );
    assert!(schedule::set_online(&mut st, false).is_empty());
    assert_eq!(
        events(&schedule::set_online(&mut st, true)),
        [&SessionEvent::Recovered]
    );
}

#[test]
fn a_request_waits_for_a_due_refresh_unless_the_server_asked_to_wait() {
    let mut st = signed_in();
    let expires = token(&st).timeline.clone().unwrap().expires_at_ms;
    assert_eq!(before_send(&st, T0 + 1_000.0, false), BeforeSend::Ready);
    assert_eq!(before_send(&st, expires, false), BeforeSend::Refresh(1));
    if let Phase::SignedIn { trouble, .. } = &mut st.phase {
        *trouble = Some(Trouble {
            failures: 1,
            unexpected: 0,
            retry_at: Some(expires + 10_000.0),
            last: FailureKind::RateLimited {
                retry_after_ms: None,
            },
        });
    }
    assert_eq!(
        before_send(&st, expires, false),
        BeforeSend::Fail(ClientError::RateLimited { retry_after: None })
    );
    assert_eq!(
        before_send(&st, expires, true),
        BeforeSend::Refresh(1),
        "joining costs nothing"
    );
    assert_eq!(
        before_send(&fresh(false), T0, false),
        BeforeSend::Fail(ClientError::Network)
    );
}

// ---- restore --------------------------------------------------------------------------------

#[test]
fn restore_plans_follow_what_storage_holds() {
    let profile = serde_json::to_string(&user()).unwrap();
    let cookie = |f: Found| plan(&f, false);
    assert_eq!(cookie(Found::default()), Plan::Nobody);
    let found = Found {
        profile: Some((Area::Local, profile.clone())),
        ..Found::default()
    };
    assert_eq!(cookie(found.clone()), Plan::SilentRefresh);
    let closed = Found {
        not_remembered: true,
        ..found.clone()
    };
    assert_eq!(cookie(closed.clone()), Plan::EndedWithBrowser);
    assert_eq!(
        cookie(Found {
            browser_session: true,
            ..closed
        }),
        Plan::SilentRefresh
    );
    let broken = Found {
        profile: Some((Area::Local, "{".into())),
        ..Found::default()
    };
    assert!(matches!(cookie(broken), Plan::Corrupt(_)));
    assert_eq!(plan(&Found::default(), true), Plan::AskTabs);
    let odd = Found {
        user: Some((Area::Local, "{}".into())),
        ..Found::default()
    };
    assert!(matches!(plan(&odd, true), Plan::Corrupt(_)));
}
