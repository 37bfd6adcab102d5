//! The public home page: `/api/test/all`.

use api_types::paths;
use yew::prelude::*;

use crate::hooks::use_content::{render_content, use_content};

/// `/` and `/home`.
#[function_component]
pub fn HomePage() -> Html {
    let content = use_content(paths::TEST_ALL);
    html! {
        <section class="card">
            <h1>{ "Home" }</h1>
            { render_content(&content) }
            <p class="muted">
                { "This app keeps you signed in for as long as your session allows: the access token is refreshed \
                   before it expires, once for all tabs, and a flaky network never signs you out." }
            </p>
        </section>
    }
}
