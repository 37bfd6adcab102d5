//! The session inspector: how a developer sees that the engine works. A live token timeline
//! (issued, proactive refresh scheduled at, expires at, refresh family end), the event bus log
//! with timestamps, the clock offset estimate, the tab holding the refresh lock, counters, and
//! controls to refresh now or fire K concurrent API calls (the refresh-storm experiment).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use api_types::paths;
use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::components::buttons::small_button;
use crate::components::numbers::{tenths, whole};
use crate::components::words::{event_words, status_words};
use crate::hooks::use_api::use_api;
use crate::hooks::use_session::{use_session, use_session_events};
use crate::session::{BffSession, SessionEvent, Timeline};

/// How many events the log keeps.
pub const LOG_CAPACITY: usize = 200;

/// Where the marks of the timeline bar sit, in percent of the bar (issued .. expires).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BarGeometry {
    /// Position of "now" (clamped to 0..=100).
    pub now_pct: f64,
    /// Position of the scheduled proactive refresh.
    pub refresh_pct: f64,
}

/// Geometry of the timeline bar at `now_ms`.
pub fn bar_geometry(t: &Timeline, now_ms: f64) -> BarGeometry {
    let span = (t.expires_at_ms - t.issued_at_ms).max(1.0);
    let pct = |at: f64| ((at - t.issued_at_ms) / span * 100.0).clamp(0.0, 100.0);
    BarGeometry {
        now_pct: pct(now_ms),
        refresh_pct: pct(t.refresh_at_ms),
    }
}

/// "in 4.2 s" / "3.0 s ago" / "in 2 h 5 min", relative to `now_ms`.
pub fn relative(at_ms: f64, now_ms: f64) -> String {
    let d = (at_ms - now_ms) / 1000.0;
    let mag = d.abs();
    // Whole seconds from here on: the floors below are integer divisions.
    let s = mag as u64;
    let text = if mag < 60.0 {
        format!("{} s", tenths(mag))
    } else if mag < 3600.0 {
        format!("{} min {} s", s / 60, s % 60)
    } else if mag < 86_400.0 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    };
    if d >= 0.0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Local wall-clock time of day, `HH:MM:SS.mmm`.
fn clock_time(ms: f64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds(),
        d.get_milliseconds()
    )
}

/// The shared event log, kept from app start whether or not the panel is open.
#[derive(Clone, Default)]
pub struct EventLog(Rc<RefCell<Vec<(f64, SessionEvent)>>>);

impl PartialEq for EventLog {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// Footer with the inspector toggle; records the event log from the start.
#[function_component]
pub fn InspectorToggle() -> Html {
    let open = use_state(|| false);
    let log = use_event_log();
    let toggle = {
        let open = open.clone();
        Callback::from(move |_| open.set(!*open))
    };
    html! {
        <>
            if *open {
                <section class="inspector" aria-label="Session inspector">
                    <div class="container"><Inspector log={log} /></div>
                </section>
            }
            <footer class="footer container">
                <span>{ "yew-session" }</span>
                <button class="btn btn-secondary btn-sm" type="button" onclick={toggle}
                    aria-expanded={open.to_string()} data-testid="inspector-toggle">
                    { if *open { "Hide session inspector" } else { "Session inspector" } }
                </button>
            </footer>
        </>
    }
}

/// Props of [`Inspector`].
#[derive(Properties, PartialEq)]
pub struct InspectorProps {
    /// The event log to show (recorded by [`InspectorToggle`], or by the `/session` page).
    pub log: EventLog,
}

/// The inspector panel.
#[function_component]
pub fn Inspector(props: &InspectorProps) -> Html {
    let session = use_session();
    let api = use_api();
    let engine = session.engine();
    // Re-render a few times a second so the bar moves.
    let now = use_state(|| engine.now_ms());
    {
        let now = now.clone();
        let engine = engine.clone();
        use_effect_with((), move |_| {
            let tick = Interval::new(250, move || now.set(engine.now_ms()));
            move || drop(tick)
        });
    }
    let burst = use_state(|| None::<String>);
    let fire = |k: usize| {
        let (api, burst) = (api.clone(), burst.clone());
        Callback::from(move |_| {
            let (api, burst) = (api.clone(), burst.clone());
            burst.set(Some(format!("{k} calls in flight…")));
            // One task per call and a shared tally (done, ok), all sent before any answer:
            // `join_all` of 50 linked futures' FuturesOrdered, 3.1 KB gzip (README, size section).
            let tally = Rc::new(Cell::new((0, 0)));
            for _ in 0..k {
                let (api, burst, tally) = (api.clone(), burst.clone(), tally.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let ok = api.get_text(paths::TEST_USER).await.is_ok();
                    let (done, oks) = tally.get();
                    let (done, oks) = (done + 1, oks + usize::from(ok));
                    tally.set((done, oks));
                    if done == k {
                        burst.set(Some(format!("{k} calls: {oks} ok, {} failed", k - oks)));
                    }
                });
            }
        })
    };
    let refresh = {
        let session = session.clone();
        Callback::from(move |_| session.refresh())
    };
    let now_ms = *now;
    let stats = engine.stats();
    let req = api.client().stats();
    let timeline = session.timeline();
    let bff = engine.config().bff();
    let server_session = engine.bff_session();
    let tab = session.tab_id();
    let holder = session.lock_holder();

    html! {
        <div data-testid="inspector">
            <h2>{ "Session inspector" }</h2>
            <div class="grid-2">
                <dl class="kv">
                    <dt>{ "Status" }</dt>
                    <dd data-testid="insp-status">{ status_words(&session.status(), session.is_degraded()) }</dd>
                    <dt>{ "Transport" }</dt><dd>{ session.transport() }</dd>
                    <dt>{ "This tab" }</dt><dd class="mono">{ tab.clone() }</dd>
                    <dt>{ "Refresh lock" }</dt>
                    <dd class="mono" data-testid="insp-lock">{ match holder {
                        Some(h) if h == tab => "this tab".to_string(),
                        Some(h) => h,
                        None => "free".to_string(),
                    } }</dd>
                    <dt>{ "Generation" }</dt><dd data-testid="insp-generation">{ session.generation() }</dd>
                </dl>
                <dl class="kv">
                    <dt>{ "Refreshes sent" }</dt><dd data-testid="insp-refreshes">{ stats.refresh_requests }</dd>
                    <dt>{ "Adopted from tabs" }</dt><dd>{ stats.adopted }</dd>
                    <dt>{ "API requests" }</dt><dd data-testid="insp-sent">{ req.sent.get() }</dd>
                    <dt>{ "401 answers" }</dt><dd data-testid="insp-401">{ req.unauthorized.get() }</dd>
                    <dt>{ "Retries" }</dt><dd>{ req.retries.get() }</dd>
                </dl>
            </div>
            { match (&timeline, &server_session) {
                (Some(t), Some(s)) => bff_view(s, t.clock_offset_ms, now_ms),
                (Some(t), None) => timeline_view(t, now_ms),
                _ if bff => html! { <p class="muted">{ "No server-side session." }</p> },
                _ => html! { <p class="muted">{ "No token." }</p> },
            } }
            <p>
                { small_button("btn-secondary", None, if bff { "Read the session now" } else { "Refresh now" }.into(), false, refresh) }
                { " " }
                { small_button("btn-secondary", Some("fire-10"), "Fire 10 calls".into(), false, fire(10)) }
                { " " }
                { small_button("btn-secondary", Some("fire-50"), "Fire 50 calls".into(), false, fire(50)) }
                { " " }
                if let Some(text) = &*burst { <span data-testid="burst-result">{ text.clone() }</span> }
            </p>
            <h2>{ "Event log" }</h2>
            <ol class="event-log" data-testid="event-log">
                { for props.log.0.borrow().iter().rev().map(|(at, ev)| html! {
                    <li>{ format!("{}  {}", clock_time(*at), event_words(ev)) }</li>
                }) }
            </ol>
        </div>
    }
}

fn timeline_view(t: &Timeline, now_ms: f64) -> Html {
    // An SVG bar (geometry attributes, not inline styles, so the strict CSP needs no
    // 'unsafe-inline'): 1000 user units = the token's lifetime, issued .. expires.
    let g = bar_geometry(t, now_ms);
    let x = |pct: f64| tenths(pct * 10.0);
    html! {
        <>
            <svg class="timeline" viewBox="0 0 1000 30" preserveAspectRatio="none" role="img" data-testid="timeline"
                aria-label={format!("Access token: refresh {}, expires {}", relative(t.refresh_at_ms, now_ms), relative(t.expires_at_ms, now_ms))}>
                <rect class="elapsed" x="0" y="0" height="30" width={x(g.now_pct)} />
                <rect class="mark-refresh" y="0" height="30" width="4" x={x(g.refresh_pct)} />
                <rect class="mark-expiry" y="0" height="30" width="4" x="996" />
                <rect class="now" y="0" height="30" width="5" x={x(g.now_pct)} />
            </svg>
            <div class="legend">
                <span><span class="key key-refresh" aria-hidden="true"></span>{ format!("proactive refresh {} ({})", clock_time(t.refresh_at_ms), relative(t.refresh_at_ms, now_ms)) }</span>
                <span><span class="key key-expiry" aria-hidden="true"></span>{ format!("expires {} ({})", clock_time(t.expires_at_ms), relative(t.expires_at_ms, now_ms)) }</span>
                <span>{ format!("issued {} ({})", clock_time(t.issued_at_ms), relative(t.issued_at_ms, now_ms)) }</span>
                <span>{ match t.family_ends_at_ms {
                    Some(end) => format!("session ends {}", relative(end, now_ms)),
                    None => "session end unknown".to_string(),
                } }</span>
                <span>{ format!("clock offset {:+} ms (server − browser)", whole(t.clock_offset_ms)) }</span>
            </div>
        </>
    }
}

/// Backend for frontend: the server-side session's timeline (`GET /api/bff/session`; server
/// times, shown on this browser's clock with the estimated offset). No token here to show.
fn bff_view(s: &BffSession, offset: f64, now_ms: f64) -> Html {
    let at = |server_ms: f64| {
        let ms = server_ms - offset;
        format!("{} ({})", clock_time(ms), relative(ms, now_ms))
    };
    // One function for the rows: each `html!` node is code of its own in the wasm.
    let row = |label: &'static str, id: &'static str, value: String| {
        html! { <><dt>{ label }</dt><dd data-testid={id}>{ value }</dd></> }
    };
    html! {
        <dl class="kv" data-testid="insp-bff">
            { row("Tokens", "insp-bff-tokens", "held by the server (backend for frontend): none in this browser".into()) }
            { row("Session created", "insp-bff-created", at(s.created_at_ms)) }
            { row("Session ends", "insp-bff-expires", at(s.expires_at_ms)) }
            { row("Upstream access token expires", "insp-bff-access", at(s.access_token_expires_at_ms)) }
            { row("Last refreshed by the server", "insp-bff-refreshed", s.last_refreshed_at_ms.map_or_else(|| "never".into(), at)) }
            { row("Refreshes by the server", "insp-bff-refresh-count", s.refresh_count.to_string()) }
            { row("Clock offset", "insp-bff-offset", format!("{:+} ms (server − browser)", whole(offset))) }
        </dl>
    }
}

/// `/session`: the inspector as a page, with its own log from when the page opened.
#[function_component]
pub fn InspectorPage() -> Html {
    let log = use_event_log();
    html! { <section class="card"><Inspector log={log} /></section> }
}

/// Records the session events (the last [`LOG_CAPACITY`]) for as long as the component lives,
/// re-rendering it on each.
#[hook]
fn use_event_log() -> EventLog {
    let log = use_memo((), |_| EventLog::default());
    let rerender = use_force_update();
    {
        let log = (*log).clone();
        use_session_events(Callback::from(move |(at, ev): (f64, SessionEvent)| {
            {
                let mut entries = log.0.borrow_mut();
                entries.push((at, ev));
                let excess = entries.len().saturating_sub(LOG_CAPACITY);
                entries.drain(..excess);
            }
            rerender.force_update();
        }));
    }
    (*log).clone()
}
