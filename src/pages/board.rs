//! The role boards: user, moderator, admin.

use yew::prelude::*;

use crate::components::guard::RequireAuth;
use crate::hooks::use_content::{render_content, use_content};

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

/// `/user`, `/mod`, `/admin`: guarded by the board's role, content from the API.
#[function_component]
pub fn BoardPage(props: &BoardPageProps) -> Html {
    let role = match props.board {
        // Every signed-in user may see the user board (the tutorial's behaviour).
        Board::User => None,
        other => Some(other.required_role()),
    };
    html! {
        <RequireAuth role={role}>
            <BoardContent board={props.board} />
        </RequireAuth>
    }
}

/// The board's text, fetched through the interceptor once the guard lets the user in.
#[function_component]
fn BoardContent(props: &BoardPageProps) -> Html {
    let content = use_content(props.board.api_path());
    html! {
        <section class="card">
            <h1>{ props.board.title() }</h1>
            { render_content(&content) }
        </section>
    }
}
