//! The one place for routes: the `Routable` enum and the `switch` that renders them.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::pages;

/// Every page of the app. Unknown paths fall through to [`Route::NotFound`].
#[derive(Clone, Debug, PartialEq, Eq, Routable)]
pub enum Route {
    #[at("/")]
    Root,
    #[at("/home")]
    Home,
    #[at("/login")]
    Login,
    #[at("/register")]
    Register,
    #[at("/profile")]
    Profile,
    #[at("/user")]
    UserBoard,
    #[at("/mod")]
    ModeratorBoard,
    #[at("/admin")]
    AdminBoard,
    /// The session inspector as a page.
    #[at("/session")]
    Session,
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// Renders the page for a route.
pub fn switch(route: Route) -> Html {
    match route {
        Route::Root | Route::Home => html! { <pages::home::HomePage /> },
        Route::Login => html! { <pages::login::LoginPage /> },
        Route::Register => html! { <pages::register::RegisterPage /> },
        Route::Profile => html! { <pages::profile::ProfilePage /> },
        Route::UserBoard => html! { <pages::board::BoardPage board={pages::board::Board::User} /> },
        Route::ModeratorBoard => {
            html! { <pages::board::BoardPage board={pages::board::Board::Moderator} /> }
        }
        Route::AdminBoard => {
            html! { <pages::board::BoardPage board={pages::board::Board::Admin} /> }
        }
        Route::Session => html! { <crate::components::inspector::InspectorPage /> },
        Route::NotFound => html! { <pages::not_found::NotFoundPage /> },
    }
}
