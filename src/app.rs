//! The root component: router, providers, layout and the route switch.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::nav::Nav;
use crate::route::{switch, Route};

/// The whole app.
#[function_component]
pub fn App() -> Html {
    html! {
        <BrowserRouter>
            <Nav />
            <main id="main" class="container">
                <Switch<Route> render={switch} />
            </main>
            <footer class="footer container">
                <span>{ "yew-session" }</span>
            </footer>
        </BrowserRouter>
    }
}
