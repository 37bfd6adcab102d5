//! Sign-up page: the shared field rules shown inline, the server's errors, then a success
//! message with a link to sign in.

use api_types::{validate, SignupRequest};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::hooks::use_session::use_session;
use crate::hooks::use_submission::use_submission;
use crate::route::Route;
use crate::session::SessionStatus;

#[derive(Clone, Default, PartialEq)]
struct Form {
    username: String,
    email: String,
    password: String,
}

impl Form {
    fn request(&self) -> SignupRequest {
        SignupRequest {
            username: self.username.trim().to_string(),
            email: self.email.trim().to_string(),
            password: self.password.clone(),
            roles: None,
        }
    }
}

/// `/register`.
#[function_component]
pub fn RegisterPage() -> Html {
    let session = use_session();
    let navigator = use_navigator();
    let form = use_state(Form::default);
    let submitted = use_state(|| false);
    let submission = use_submission::<String>();

    use_effect_with(session.status(), move |status| {
        if *status == SessionStatus::SignedIn {
            if let Some(nav) = navigator {
                nav.replace(&Route::Profile);
            }
        }
    });

    let errors = if *submitted {
        validate::signup(&form.request())
    } else {
        Vec::new()
    };
    let error_of = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
    };

    let on_input = |field: &'static str| {
        let form = form.clone();
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlInputElement>().value();
            let mut next = (*form).clone();
            match field {
                "username" => next.username = value,
                "email" => next.email = value,
                _ => next.password = value,
            }
            form.set(next);
        })
    };

    let onsubmit = {
        let (form, submitted, submission) = (form.clone(), submitted.clone(), submission.clone());
        let session = session.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            submitted.set(true);
            if !validate::signup(&form.request()).is_empty() {
                return;
            }
            if let Some(done) = submission.start() {
                session.register(form.request(), done);
            }
        })
    };

    if let Some(message) = submission.succeeded() {
        return html! {
            <section class="card card-narrow">
                <h1>{ "Sign up" }</h1>
                <div class="alert alert-success" role="status" data-testid="register-success">{ message }</div>
                <Link<Route> to={Route::Login} classes="btn btn-primary btn-block">{ "Sign in" }</Link<Route>>
            </section>
        };
    }

    let field = |id: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 value: &str,
                 auto: &'static str| {
        super::input_field(id, label, kind, value, auto, error_of(id), on_input(id))
    };

    html! {
        <section class="card card-narrow">
            <div class="avatar" aria-hidden="true">{ crate::components::icons::person_add() }</div>
            <h1>{ "Sign up" }</h1>
            <form onsubmit={onsubmit} novalidate=true>
                { field("username", "Username", "text", &form.username, "username") }
                { field("email", "Email", "email", &form.email, "email") }
                { field("password", "Password", "password", &form.password, "new-password") }
                <button class="btn btn-primary btn-block" type="submit" disabled={submission.busy()}>
                    if submission.busy() { <span class="spinner" aria-hidden="true"></span> }
                    { if submission.busy() { "Signing up…" } else { "Sign up" } }
                </button>
                if let Some(message) = submission.error() {
                    <div class="alert alert-danger" role="alert" data-testid="register-error">{ message }</div>
                }
            </form>
        </section>
    }
}
