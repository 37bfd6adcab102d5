//! The root component: runtime config, router, session provider, layout, and the `switch` that
//! renders the page of each route.

use std::rc::Rc;

use yew::prelude::*;
use yew_router::prelude::*;

use crate::browser::config::load_config;
use crate::components::inspector::{InspectorPage, InspectorToggle};
use crate::components::nav::Nav;
use crate::components::offline_banner::OfflineBanner;
use crate::components::session_end::SessionEndNotice;
use crate::components::session_provider::SessionProvider;
use crate::components::toasts::Toasts;
use crate::config::AppConfig;
use crate::pages;
use crate::route::Route;

/// The whole app: reads `config.json` (falling back to defaults), then mounts the session.
#[function_component]
pub fn App() -> Html {
    let config = use_state(|| None::<Rc<AppConfig>>);
    {
        let config = config.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                config.set(Some(Rc::new(load_config().await)));
            });
        });
    }
    match &*config {
        None => html! { <div class="container" aria-busy="true"></div> },
        Some(config) => html! { <AppWithConfig config={config.clone()} /> },
    }
}

/// Props of [`AppWithConfig`].
#[derive(Properties, PartialEq)]
pub struct AppWithConfigProps {
    pub config: Rc<AppConfig>,
}

/// The app for a given configuration (tests mount this directly).
#[function_component]
pub fn AppWithConfig(props: &AppWithConfigProps) -> Html {
    html! {
        <BrowserRouter>
            <SessionProvider config={props.config.clone()}>
                <Layout />
            </SessionProvider>
        </BrowserRouter>
    }
}

/// Nav, banner, page, footer with the inspector toggle, toasts.
#[function_component]
pub fn Layout() -> Html {
    html! {
        <>
            <a class="skip-link" href="#main">{ "Skip to content" }</a>
            <Nav />
            <OfflineBanner />
            <SessionEndNotice />
            <main id="main" class="container" tabindex="-1">
                <Switch<Route> render={switch} />
            </main>
            <InspectorToggle />
            <Toasts />
        </>
    }
}

/// Renders the page for a route.
pub fn switch(route: Route) -> Html {
    use pages::board::{Board, BoardPage};
    match route {
        Route::Root | Route::Home => html! { <pages::home::HomePage /> },
        Route::Login => html! { <pages::login::LoginPage /> },
        Route::Register => html! { <pages::register::RegisterPage /> },
        Route::Profile => html! { <pages::profile::ProfilePage /> },
        Route::ChangePassword => html! { <pages::password::ChangePasswordPage /> },
        Route::UserBoard => html! { <BoardPage board={Board::User} /> },
        Route::ModeratorBoard => html! { <BoardPage board={Board::Moderator} /> },
        Route::AdminBoard => html! { <BoardPage board={Board::Admin} /> },
        Route::Session => html! { <InspectorPage /> },
        Route::NotFound => html! { <pages::not_found::NotFoundPage /> },
    }
}
