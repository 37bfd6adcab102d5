//! The role boards: user, moderator, admin.

use yew::prelude::*;

/// Which board a page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    User,
    Moderator,
    Admin,
}

impl Board {
    /// Heading shown on the page.
    pub fn title(self) -> &'static str {
        match self {
            Board::User => "User board",
            Board::Moderator => "Moderator board",
            Board::Admin => "Admin board",
        }
    }

    /// API path that serves the board's content.
    pub fn api_path(self) -> &'static str {
        match self {
            Board::User => api_types::paths::TEST_USER,
            Board::Moderator => api_types::paths::TEST_MOD,
            Board::Admin => api_types::paths::TEST_ADMIN,
        }
    }

    /// Role the board needs, as the API spells it.
    pub fn required_role(self) -> &'static str {
        match self {
            Board::User => api_types::roles::USER,
            Board::Moderator => api_types::roles::MODERATOR,
            Board::Admin => api_types::roles::ADMIN,
        }
    }
}

/// Props of [`BoardPage`].
#[derive(Properties, PartialEq)]
pub struct BoardPageProps {
    pub board: Board,
}

/// `/user`, `/mod`, `/admin`.
#[function_component]
pub fn BoardPage(props: &BoardPageProps) -> Html {
    html! {
        <section class="card">
            <h1>{ props.board.title() }</h1>
        </section>
    }
}
