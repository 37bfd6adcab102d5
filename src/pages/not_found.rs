//! Page for unknown routes.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::route::Route;

/// Any path no route matches.
#[function_component]
pub fn NotFoundPage() -> Html {
    html! {
        <section class="card">
            <h1>{ "Page not found" }</h1>
            <p>{ "There is nothing at this address." }</p>
            <Link<Route> to={Route::Home} classes="btn btn-secondary">{ "Go home" }</Link<Route>>
        </section>
    }
}
