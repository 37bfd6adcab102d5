//! `use_content(path)`: fetches a text resource through the interceptor when the component
//! mounts (and when the path changes), as a loading / loaded / failed value, with a way back
//! from a transient failure: the page retries by itself (backoff 2, 4, 8 ... 30 s, and at once
//! when the session engine reports it is back online), and offers a Retry button.

use yew::prelude::*;

use crate::hooks::use_api::use_api;
use crate::hooks::use_session::use_session_events;
use crate::session::{ClientError, SessionEvent};

/// The state of a fetched text resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Loading,
    Loaded(String),
    Failed(ClientError),
}

/// What a page gets: the content, and a callback that fetches it again.
#[derive(Clone, PartialEq)]
pub struct ContentHandle {
    /// The current state.
    pub content: Content,
    /// Fetches again now (the Retry button).
    pub retry: Callback<()>,
}

/// Delay before the automatic retry number `n` (1-based) after a transient failure.
pub fn auto_retry_delay_ms(n: u32) -> u32 {
    (2_000u32 << n.saturating_sub(1).min(4)).min(30_000)
}

/// Fetches `path` as text through the interceptor.
#[hook]
pub fn use_content(path: &'static str) -> ContentHandle {
    let api = use_api();
    let content = use_state(|| Content::Loading);
    // Bumped to fetch again; the latest value is also kept where a sleeping retry can see it,
    // so only the newest attempt schedules the next one.
    let attempt = use_state(|| 0u32);
    let latest = use_mut_ref(|| 0u32);
    let failures = use_mut_ref(|| 0u32);
    let retry = {
        let attempt = attempt.clone();
        let latest = latest.clone();
        Callback::from(move |()| {
            let next = latest.borrow().wrapping_add(1);
            *latest.borrow_mut() = next;
            attempt.set(next);
        })
    };
    {
        let content = content.clone();
        let retry = retry.clone();
        let latest = latest.clone();
        use_effect_with((path, *attempt), move |&(path, n)| {
            content.set(Content::Loading);
            wasm_bindgen_futures::spawn_local(async move {
                match api.get_text(path).await {
                    Ok(text) => {
                        *failures.borrow_mut() = 0;
                        content.set(Content::Loaded(text));
                    }
                    Err(e) => {
                        let transient = e.is_transient();
                        content.set(Content::Failed(e));
                        if transient {
                            let k = {
                                let mut f = failures.borrow_mut();
                                *f += 1;
                                *f
                            };
                            gloo_timers::future::TimeoutFuture::new(auto_retry_delay_ms(k)).await;
                            // Only if nothing fetched again meanwhile (button, online event).
                            if *latest.borrow() == n {
                                retry.emit(());
                            }
                        }
                    }
                }
            });
        });
    }
    {
        // Back online / server back: a page whose content failed fetches it again at once.
        let content = content.clone();
        let retry = retry.clone();
        use_session_events(Callback::from(move |(_, ev): (f64, SessionEvent)| {
            if ev == SessionEvent::Recovered
                && matches!(&*content, Content::Failed(e) if e.is_transient())
            {
                retry.emit(());
            }
        }));
    }
    ContentHandle {
        content: (*content).clone(),
        retry,
    }
}

/// Renders a [`ContentHandle`] as the body of a page: a failure comes with a Retry button.
pub fn render_content(handle: &ContentHandle) -> Html {
    match &handle.content {
        Content::Loading => html! {
            <p class="muted" aria-busy="true"><span class="spinner" aria-hidden="true"></span>{ " Loading…" }</p>
        },
        Content::Loaded(text) => {
            html! { <p class="lead" data-testid="content">{ text.clone() }</p> }
        }
        Content::Failed(e) => {
            let retry = handle.retry.reform(|_: MouseEvent| ());
            html! {
                <div class="alert alert-danger" role="alert" data-testid="content-error">
                    { e.to_string() }
                    { " " }
                    <button type="button" class="btn btn-sm" data-testid="content-retry" onclick={retry}>{ "Retry" }</button>
                </div>
            }
        }
    }
}
