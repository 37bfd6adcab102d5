//! Host tests of the account forms' pure decisions: the change-password form's own checks, and
//! which field a server's refusal is shown at.

use api_types::codes;
use yew_session::api::Refusal;
use yew_session::hooks::use_submission::Failure;
use yew_session::pages::password::{check, refusal_words, PasswordForm, CONFIRM, CURRENT, NEW};
use yew_session::session::ClientError;

fn form(current: &str, new: &str, confirm: &str) -> PasswordForm {
    PasswordForm {
        current: current.into(),
        new: new.into(),
        confirm: confirm.into(),
    }
}

fn fields(f: &PasswordForm) -> Vec<&'static str> {
    check(f).iter().map(|e| e.field).collect()
}

#[test]
fn the_new_password_follows_the_sign_up_rule_and_must_be_typed_twice() {
    assert_eq!(fields(&form("", "", "")), [CURRENT, NEW]);
    assert_eq!(fields(&form("old", "short", "short")), [NEW]);
    assert_eq!(
        check(&form("old", "short", "short"))[0].message,
        api_types::validate::password("short").unwrap_err().message
    );
    assert_eq!(fields(&form("old", &"x".repeat(129), "")), [NEW]);
    assert_eq!(
        fields(&form("old", "long-enough", "long-enougH")),
        [CONFIRM]
    );
    assert!(check(&form("old", "long-enough", "long-enough")).is_empty());
    // Unchanged is the server's to say: it knows the stored password, the form does not.
    assert!(check(&form("long-enough", "long-enough", "long-enough")).is_empty());
}

fn refused(error: ClientError, code: Option<&str>) -> Failure {
    refusal_words(
        &Refusal {
            error,
            code: code.map(str::to_owned),
        },
        CURRENT,
    )
}

#[test]
fn each_refusal_is_shown_at_the_field_it_is_about() {
    let wrong = refused(
        ClientError::Forbidden {
            message: "The current password is not correct.".into(),
        },
        Some(codes::WRONG_PASSWORD),
    );
    assert_eq!(wrong.field, Some(CURRENT));
    assert_eq!(wrong.message, "The current password is not correct.");
    for code in [codes::INVALID_PASSWORD, codes::PASSWORD_UNCHANGED] {
        let f = refused(
            ClientError::Http {
                status: 400,
                message: "words".into(),
            },
            Some(code),
        );
        assert_eq!(
            (f.field, f.message.as_str()),
            (Some(NEW), "words"),
            "{code}"
        );
    }
    let throttled = refused(
        ClientError::RateLimited {
            retry_after: Some(7.0),
        },
        None,
    );
    assert_eq!(throttled.field, Some(CURRENT));
    assert_eq!(throttled.message, "Too many attempts. Try again in 7 s.");
    let offline = refused(ClientError::Network, None);
    assert_eq!(offline.field, None, "a network failure is the form's");
    let other = refused(
        ClientError::Forbidden {
            message: "Forbidden by a proxy".into(),
        },
        None,
    );
    assert_eq!(
        other.field, None,
        "a 403 without the code is not a wrong password"
    );
}
