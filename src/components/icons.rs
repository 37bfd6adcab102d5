//! Small inline SVG icons (no icon font or emoji font needed, nothing fetched).

use yew::prelude::*;

/// A padlock.
pub fn lock() -> Html {
    html! {
        <svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
            <rect x="4" y="11" width="16" height="10" rx="2" />
            <path d="M8 11V7a4 4 0 0 1 8 0v4" />
        </svg>
    }
}

/// A person with a plus sign.
pub fn person_add() -> Html {
    html! {
        <svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
            <circle cx="9" cy="8" r="4" />
            <path d="M2 21v-1a6 6 0 0 1 6-6h2a6 6 0 0 1 6 6v1" />
            <path d="M19 8v6M16 11h6" />
        </svg>
    }
}
