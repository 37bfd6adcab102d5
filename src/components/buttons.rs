//! The small buttons of the account's actions and the inspector, and the confirmation box that
//! asks before an account action: plain functions so that each shape is one function in the
//! wasm instead of an `html!` expansion at every place it appears (`scripts/size`).

use yew::prelude::*;

/// `<button class="btn {kind} btn-sm" type="button">` with an optional `data-testid`.
pub fn small_button(
    kind: &'static str,
    testid: Option<&'static str>,
    label: AttrValue,
    disabled: bool,
    onclick: Callback<MouseEvent>,
) -> Html {
    html! {
        <button class={classes!("btn", kind, "btn-sm")} type="button" data-testid={testid}
            {disabled} {onclick}>{ label }</button>
    }
}

/// A question with a danger button (`data-testid="confirm-yes"`) and a Cancel button, as a
/// `role="group"` labelled by the question.
pub fn confirm_box(
    testid: &'static str,
    question: &'static str,
    yes: &'static str,
    busy: bool,
    on_yes: Callback<MouseEvent>,
    on_cancel: Callback<MouseEvent>,
) -> Html {
    html! {
        <div class="confirm" role="group" aria-label={question} data-testid={testid}>
            <p>{ question }</p>
            <div class="actions">
                { small_button("btn-danger", Some("confirm-yes"), yes.into(), busy, on_yes) }
                { small_button("btn-secondary", None, "Cancel".into(), false, on_cancel) }
            </div>
        </div>
    }
}
