//! The public home page.

use yew::prelude::*;

/// `/` and `/home`.
#[function_component]
pub fn HomePage() -> Html {
    html! {
        <section class="card">
            <h1>{ "Home" }</h1>
            <p>{ "A Yew app whose access-token / refresh-token session works correctly." }</p>
        </section>
    }
}
