//! What the routes render, and the one labelled input with its inline error that their forms
//! share.

use yew::prelude::*;

pub mod board;
pub mod callback;
pub mod home;
pub mod login;
pub mod not_found;
pub mod password;
pub mod profile;
pub mod register;

/// A labelled input of type `kind` with its inline error (`{id}-error`, named by
/// `aria-describedby`): the sign-up form's fields and the account's password fields.
pub fn input_field(
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    value: &str,
    autocomplete: &'static str,
    error: Option<String>,
    oninput: Callback<InputEvent>,
) -> Html {
    let err_id = [id, "-error"].concat();
    html! {
        <div class="field">
            <label for={id}>{ label }</label>
            <input id={id} name={id} type={kind} value={value.to_string()}
                {autocomplete} {oninput}
                class={classes!(error.is_some().then_some("is-invalid"))}
                aria-invalid={if error.is_some() { "true" } else { "false" }}
                aria-describedby={error.is_some().then(|| err_id.clone())} />
            if let Some(message) = error {
                <div class="invalid-feedback" id={err_id}>{ message }</div>
            }
        </div>
    }
}
