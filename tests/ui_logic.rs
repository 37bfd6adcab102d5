//! Host tests of the UI's pure decisions: which events toast, the inspector's timeline geometry
//! and wording, and what the login form says on failure.

use yew_session::components::inspector::{bar_geometry, relative};
use yew_session::components::toasts::{toast_for, ToastKind};
use yew_session::components::words::{
    event_words, failure_words, login_error_message, reason_words, status_words,
};
use yew_session::session::{ClientError, FailureKind, LogoutReason, SessionEvent, Timeline};

#[test]
fn background_refreshes_toast_only_in_debug_mode() {
    let refreshed = SessionEvent::Refreshed {
        generation: 2,
        adopted: false,
    };
    assert_eq!(toast_for(&refreshed, false), None);
    assert!(toast_for(&refreshed, true).is_some());
    assert_eq!(
        toast_for(&SessionEvent::RefreshFailed(FailureKind::Network), false),
        None
    );
}

#[test]
fn session_endings_toast_with_their_reason() {
    let other = toast_for(
        &SessionEvent::LoggedOut {
            reason: LogoutReason::OtherTab,
        },
        false,
    )
    .unwrap();
    assert_eq!(other.0, ToastKind::Warning);
    assert!(other.1.contains("another tab"), "{}", other.1);

    let reuse = toast_for(
        &SessionEvent::LoggedOut {
            reason: LogoutReason::ReuseDetected,
        },
        false,
    )
    .unwrap();
    assert_eq!(reuse.0, ToastKind::Danger);

    let expired = toast_for(&SessionEvent::SessionExpired, false).unwrap();
    assert!(expired.1.contains("sign in again"));
    // The LoggedOut{Expired} that follows SessionExpired does not toast a second time.
    assert_eq!(
        toast_for(
            &SessionEvent::LoggedOut {
                reason: LogoutReason::Expired
            },
            false
        ),
        None
    );
    assert_eq!(
        toast_for(&SessionEvent::Degraded, false).unwrap().0,
        ToastKind::Warning
    );
}

#[test]
fn timeline_bar_places_now_and_refresh_within_the_token_lifetime() {
    let t = Timeline {
        issued_at_ms: 1_000.0,
        refresh_at_ms: 8_000.0,
        expires_at_ms: 11_000.0,
        family_ends_at_ms: None,
        clock_offset_ms: 0.0,
    };
    let g = bar_geometry(&t, 6_000.0);
    assert!((g.now_pct - 50.0).abs() < 1e-9);
    assert!((g.refresh_pct - 70.0).abs() < 1e-9);
    assert_eq!(bar_geometry(&t, 0.0).now_pct, 0.0);
    assert_eq!(bar_geometry(&t, 99_000.0).now_pct, 100.0);
}

#[test]
fn relative_times_read_naturally() {
    assert_eq!(relative(4_200.0, 0.0), "in 4.2 s");
    assert_eq!(relative(0.0, 3_000.0), "3.0 s ago");
    assert_eq!(relative(125_000.0, 0.0), "in 2 min 5 s");
    assert_eq!(relative(7_500_000.0, 0.0), "in 2 h 5 min");
    assert_eq!(relative(2.0 * 86_400_000.0, 0.0), "in 2 d 0 h");
}

#[test]
fn login_errors_show_the_servers_message_or_a_useful_sentence() {
    let wrong = ClientError::Http {
        status: 401,
        message: "Invalid username or password.".into(),
    };
    assert_eq!(login_error_message(&wrong), "Invalid username or password.");
    assert!(login_error_message(&ClientError::RateLimited {
        retry_after: Some(29.2)
    })
    .contains("30 s"));
    assert!(login_error_message(&ClientError::Network).contains("could not be reached"));
    assert!(login_error_message(&ClientError::Server { status: 503 }).contains("503"));
}

#[test]
fn the_session_end_notice_shows_within_its_window_only() {
    use yew_session::components::session_end::{left_text, session_end_notice};
    let end = Some(1_000_000.0);
    assert_eq!(
        session_end_notice(600_000.0, end, 300_000.0),
        None,
        "too early"
    );
    assert_eq!(
        session_end_notice(700_000.0, end, 300_000.0),
        Some(300_000.0)
    );
    assert_eq!(session_end_notice(999_000.0, end, 300_000.0), Some(1_000.0));
    assert_eq!(
        session_end_notice(1_200_000.0, end, 300_000.0),
        Some(0.0),
        "past the end"
    );
    assert_eq!(
        session_end_notice(999_000.0, None, 300_000.0),
        None,
        "end unknown"
    );
    assert_eq!(session_end_notice(999_000.0, end, 0.0), None, "turned off");
    assert_eq!(left_text(245_000.0), "4 min 05 s");
    assert_eq!(left_text(44_100.0), "45 s");
}

#[test]
fn the_inspector_says_the_session_status_in_words() {
    use yew_session::session::SessionStatus;
    assert_eq!(
        status_words(&SessionStatus::Restoring, false),
        "Restoring the session…"
    );
    assert_eq!(status_words(&SessionStatus::SignedIn, false), "Signed in");
    assert!(status_words(&SessionStatus::SignedIn, true).starts_with("Signed in — degraded"));
    assert_eq!(
        status_words(&SessionStatus::SignedOut { reason: None }, false),
        "Signed out"
    );
    assert_eq!(
        status_words(
            &SessionStatus::SignedOut {
                reason: Some(LogoutReason::RefreshRejected)
            },
            false
        ),
        "Signed out — the server ended the session"
    );
}

#[test]
fn every_logout_reason_has_its_own_words_and_no_rust_syntax() {
    let reasons = [
        LogoutReason::UserAction,
        LogoutReason::Expired,
        LogoutReason::RefreshRejected,
        LogoutReason::ReuseDetected,
        LogoutReason::TokenRejected,
        LogoutReason::OtherTab,
        LogoutReason::CorruptStorage,
        LogoutReason::SignedOutEverywhere,
        LogoutReason::AccountDeleted,
    ];
    let words: Vec<&str> = reasons.iter().map(reason_words).collect();
    let sentences: Vec<&str> = reasons.iter().map(LogoutReason::describe).collect();
    for (i, s) in sentences.iter().enumerate() {
        assert!(!sentences[..i].contains(s), "{s:?} said twice");
    }
    for (i, w) in words.iter().enumerate() {
        assert!(!words[..i].contains(w), "{w:?} said twice");
        let debug = format!("{:?}", reasons[i]);
        assert!(!w.contains(&debug) && !w.contains('{'), "{w}");
    }
    assert_eq!(
        event_words(&SessionEvent::LoggedOut {
            reason: LogoutReason::OtherTab
        }),
        "Signed out — signed out in another tab"
    );
}

#[test]
fn refresh_failures_say_what_went_wrong() {
    assert_eq!(
        event_words(&SessionEvent::RefreshFailed(FailureKind::Network)),
        "Refresh failed: no answer (network)"
    );
    assert_eq!(
        failure_words(&FailureKind::Server { status: 503 }),
        "server error (HTTP 503)"
    );
    assert_eq!(
        failure_words(&FailureKind::Server { status: 404 }),
        "unexpected answer (HTTP 404)"
    );
    assert_eq!(
        failure_words(&FailureKind::RateLimited {
            retry_after_ms: Some(30_000.0)
        }),
        "rate limited, retrying in 30 s"
    );
    assert_eq!(
        failure_words(&FailureKind::Rejected {
            status: 401,
            message: "Refresh token expired".into(),
            code: None,
        }),
        "refused by the server (HTTP 401): Refresh token expired"
    );
    // The events that already read as sentences keep the engine's words.
    let refreshed = SessionEvent::Refreshed {
        generation: 3,
        adopted: true,
    };
    assert_eq!(event_words(&refreshed), refreshed.describe());
}

#[test]
fn a_failed_bff_sign_in_is_said_in_words_and_a_providers_error_by_its_name() {
    use yew_session::components::words::bff_error_words;
    assert_eq!(
        bff_error_words("login_expired"),
        "The sign-in took too long (more than 10 minutes). Please sign in again."
    );
    assert_eq!(
        bff_error_words("login_other_browser"),
        "This sign-in was started in another browser. Please sign in again."
    );
    for reason in ["iss_mismatch", "id_token_invalid", "token_exchange_failed"] {
        assert_eq!(
            bff_error_words(reason),
            "The sign-in provider's answer could not be used. Please sign in again.",
            "{reason}"
        );
    }
    assert!(bff_error_words("provider_unavailable").contains("try again in a moment"));
    assert_eq!(
        bff_error_words("access_denied"),
        "The sign-in provider did not sign you in (access_denied)."
    );
}
