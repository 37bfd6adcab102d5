//! Change the password (`/profile/password`, reached from the profile; session-api only): the
//! current password and the new one twice, checked inline by sign-up's password rule
//! (`api_types::validate::password`) the way the sign-up page checks it; the server's refusals
//! next to the field they are about; on success the server's message. This session stays signed
//! in: the server ends only the account's other sessions.

use api_types::{codes, paths, validate, ChangePasswordRequest};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::Refusal;
use crate::components::guard::RequireAuth;
use crate::components::words::login_error_message;
use crate::hooks::use_api::use_api;
use crate::hooks::use_session::use_session;
use crate::hooks::use_submission::{use_submission, Failure};
use crate::route::Route;
use crate::session::ports::Method;
use crate::session::ClientError;

/// `id` of the current-password input.
pub const CURRENT: &str = "current-password";
/// `id` of the new-password input.
pub const NEW: &str = "new-password";
/// `id` of the confirmation input.
pub const CONFIRM: &str = "confirm-password";

/// What the form holds.
#[derive(Clone, Default, PartialEq)]
pub struct PasswordForm {
    /// The current password.
    pub current: String,
    /// The new password.
    pub new: String,
    /// The new password again.
    pub confirm: String,
}

/// The form's own checks, in form order: a current password is given, the new one passes
/// sign-up's rule, and the confirmation matches it. Whether the new one differs from the current
/// one is the server's to say (`password_unchanged`), like every rule about the stored password.
pub fn check(form: &PasswordForm) -> Vec<validate::FieldError> {
    let mut errors = Vec::new();
    if form.current.is_empty() {
        errors.push(validate::FieldError {
            field: CURRENT,
            message: "Enter your current password.".into(),
        });
    }
    if let Err(e) = validate::password(&form.new) {
        errors.push(validate::FieldError {
            field: NEW,
            message: e.message,
        });
    } else if form.confirm != form.new {
        errors.push(validate::FieldError {
            field: CONFIRM,
            message: "The two new passwords do not match.".into(),
        });
    }
    errors
}

/// A refusal of a call checked against the current password (password change, account deletion)
/// in words, next to its field: a wrong current password and the throttle's wait at `current`,
/// the new password's refusals (too weak, unchanged) at [`NEW`], anything else for the form.
pub fn refusal_words(r: &Refusal, current: &'static str) -> Failure {
    let field = match (r.code.as_deref(), &r.error) {
        (Some(codes::WRONG_PASSWORD), _) | (_, ClientError::RateLimited { .. }) => Some(current),
        (Some(codes::INVALID_PASSWORD | codes::PASSWORD_UNCHANGED), _) => Some(NEW),
        _ => None,
    };
    Failure {
        field,
        message: login_error_message(&r.error),
    }
}

fn change_refusal(r: &Refusal) -> Failure {
    refusal_words(r, CURRENT)
}

/// A labelled password input with its inline error (`{id}-error`, named by
/// `aria-describedby`): the change-password form's three and the account deletion's one.
pub fn password_field(
    id: &'static str,
    label: &'static str,
    value: &str,
    autocomplete: &'static str,
    error: Option<String>,
    oninput: Callback<InputEvent>,
) -> Html {
    super::input_field(id, label, "password", value, autocomplete, error, oninput)
}

/// `/profile/password`.
#[function_component]
pub fn ChangePasswordPage() -> Html {
    html! { <RequireAuth><ChangePassword /></RequireAuth> }
}

#[function_component]
fn ChangePassword() -> Html {
    let session = use_session();
    let api = use_api();
    let form = use_state(PasswordForm::default);
    let submitted = use_state(|| false);
    let submission = use_submission::<String>();

    if session.transport() != "cookie" {
        return html! {
            <section class="card card-narrow">
                <h1>{ "Change password" }</h1>
                <p class="muted" data-testid="password-unavailable">
                    { "This server does not offer changing the password from the app." }
                </p>
                <Link<Route> to={Route::Profile}>{ "Back to the profile" }</Link<Route>>
            </section>
        };
    }

    if let Some(message) = submission.succeeded() {
        return html! {
            <section class="card card-narrow">
                <h1>{ "Change password" }</h1>
                <div class="alert alert-success" role="status" data-testid="password-success">{ message.clone() }</div>
                <p>{ "You are still signed in here." }</p>
                <Link<Route> to={Route::Profile} classes="btn btn-primary btn-block">{ "Back to the profile" }</Link<Route>>
            </section>
        };
    }

    let errors = if *submitted { check(&form) } else { Vec::new() };
    let error_of = |field: &'static str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
            .or_else(|| submission.error_on(field).map(str::to_owned))
    };

    let on_input = |field: &'static str| {
        let (form, submission) = (form.clone(), submission.clone());
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlInputElement>().value();
            let mut next = (*form).clone();
            match field {
                CURRENT => next.current = value,
                NEW => next.new = value,
                _ => next.confirm = value,
            }
            form.set(next);
            // A refusal is about what was sent: it goes once the form changes.
            if !submission.busy() {
                submission.reset();
            }
        })
    };

    let onsubmit = {
        let (form, submitted, submission) = (form.clone(), submitted.clone(), submission.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            submitted.set(true);
            if !check(&form).is_empty() {
                return;
            }
            let Some(done) = submission.start_with(change_refusal) else {
                return;
            };
            let req = ChangePasswordRequest {
                current_password: form.current.clone(),
                new_password: form.new.clone(),
            };
            let api = api.clone();
            wasm_bindgen_futures::spawn_local(async move {
                done.emit(api.send_json(Method::Post, paths::PASSWORD, &req).await);
            });
        })
    };

    let field = |id: &'static str, label: &'static str, value: &str, auto: &'static str| {
        password_field(id, label, value, auto, error_of(id), on_input(id))
    };

    html! {
        <section class="card card-narrow">
            <div class="avatar" aria-hidden="true">{ crate::components::icons::lock() }</div>
            <h1>{ "Change password" }</h1>
            <p class="muted">{ "Your other sessions are signed out; this one stays signed in." }</p>
            <form onsubmit={onsubmit} novalidate=true data-testid="password-form">
                { field(CURRENT, "Current password", &form.current, "current-password") }
                { field(NEW, "New password", &form.new, "new-password") }
                { field(CONFIRM, "New password again", &form.confirm, "new-password") }
                <button class="btn btn-primary btn-block" type="submit" disabled={submission.busy()}>
                    if submission.busy() { <span class="spinner" aria-hidden="true"></span> }
                    { if submission.busy() { "Changing…" } else { "Change password" } }
                </button>
                if let Some(message) = submission.error() {
                    <div class="alert alert-danger" role="alert" data-testid="password-error">{ message.to_owned() }</div>
                }
            </form>
            <p class="muted"><Link<Route> to={Route::Profile}>{ "Back to the profile" }</Link<Route>></p>
        </section>
    }
}
