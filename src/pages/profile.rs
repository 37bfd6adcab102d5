//! The signed-in user's profile and sessions.

use yew::prelude::*;

/// `/profile`.
#[function_component]
pub fn ProfilePage() -> Html {
    html! {
        <section class="card">
            <h1>{ "Profile" }</h1>
        </section>
    }
}
