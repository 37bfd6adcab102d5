//! The navigation bar.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::route::Route;

/// Top navigation: brand, Home, and the sign-in links.
#[function_component]
pub fn Nav() -> Html {
    html! {
        <header class="navbar">
            <nav class="container navbar-inner" aria-label="Main">
                <Link<Route> to={Route::Home} classes="brand">{ "yew-session" }</Link<Route>>
                <ul class="nav-links">
                    <li><Link<Route> to={Route::Home}>{ "Home" }</Link<Route>></li>
                </ul>
                <ul class="nav-links nav-right">
                    <li><Link<Route> to={Route::Register}>{ "Sign up" }</Link<Route>></li>
                    <li><Link<Route> to={Route::Login}>{ "Login" }</Link<Route>></li>
                </ul>
            </nav>
        </header>
    }
}
