//! `use_content(path)`: fetches a text resource through the interceptor when the component
//! mounts (and when the path changes), as a loading / loaded / failed value.

use yew::prelude::*;

use crate::hooks::use_api::use_api;
use crate::session::ClientError;

/// The state of a fetched text resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Loading,
    Loaded(String),
    Failed(ClientError),
}

/// Fetches `path` as text through the interceptor.
#[hook]
pub fn use_content(path: &'static str) -> Content {
    let api = use_api();
    let content = use_state(|| Content::Loading);
    {
        let content = content.clone();
        use_effect_with(path, move |path| {
            let path = *path;
            content.set(Content::Loading);
            wasm_bindgen_futures::spawn_local(async move {
                content.set(match api.get_text(path).await {
                    Ok(text) => Content::Loaded(text),
                    Err(e) => Content::Failed(e),
                });
            });
        });
    }
    (*content).clone()
}

/// Renders a [`Content`] as the body of a page.
pub fn render_content(content: &Content) -> Html {
    match content {
        Content::Loading => html! {
            <p class="muted" aria-busy="true"><span class="spinner" aria-hidden="true"></span>{ " Loading…" }</p>
        },
        Content::Loaded(text) => {
            html! { <p class="lead" data-testid="content">{ text.clone() }</p> }
        }
        Content::Failed(e) => html! {
            <div class="alert alert-danger" role="alert" data-testid="content-error">{ e.to_string() }</div>
        },
    }
}
