//! Sign-up page.

use yew::prelude::*;

/// `/register`.
#[function_component]
pub fn RegisterPage() -> Html {
    html! {
        <section class="card card-narrow">
            <h1>{ "Sign up" }</h1>
        </section>
    }
}
