//! Prometheus metrics (text exposition at `GET /metrics`): refresh outcomes, sign-in outcomes,
//! responses by status and a request-latency histogram.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// Outcome of a refresh request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Rotated.
    Ok,
    /// Already rotated, successor never presented: the same successor again.
    Repeated,
    /// Successor presented moments ago (racing tabs): walked on to the active token.
    Grace,
    /// Reuse detected; family revoked.
    ReuseDetected,
    /// Missing, unknown, revoked, wrong transport.
    Invalid,
    /// Family expired (absolute or idle).
    Expired,
    /// Cross-site attempt rejected before looking at the token.
    CsrfRejected,
}

const REFRESH_OUTCOMES: [(RefreshOutcome, &str); 7] = [
    (RefreshOutcome::Ok, "ok"),
    (RefreshOutcome::Repeated, "repeated"),
    (RefreshOutcome::Grace, "grace"),
    (RefreshOutcome::ReuseDetected, "reuse_detected"),
    (RefreshOutcome::Invalid, "invalid"),
    (RefreshOutcome::Expired, "expired"),
    (RefreshOutcome::CsrfRejected, "csrf_rejected"),
];

/// Outcome of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninOutcome {
    /// Signed in.
    Ok,
    /// Wrong user or password.
    Invalid,
    /// Throttled (429).
    Throttled,
}

const SIGNIN_OUTCOMES: [(SigninOutcome, &str); 3] = [
    (SigninOutcome::Ok, "ok"),
    (SigninOutcome::Invalid, "invalid"),
    (SigninOutcome::Throttled, "throttled"),
];

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// All counters of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    refreshes: [AtomicU64; 7],
    signins: [AtomicU64; 3],
    statuses: Mutex<BTreeMap<u16, u64>>,
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts a refresh outcome.
    pub fn refresh(&self, o: RefreshOutcome) {
        if let Some(i) = REFRESH_OUTCOMES.iter().position(|(x, _)| *x == o) {
            self.refreshes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a sign-in outcome.
    pub fn signin(&self, o: SigninOutcome) {
        if let Some(i) = SIGNIN_OUTCOMES.iter().position(|(x, _)| *x == o) {
            self.signins[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refresh count for one outcome (tests).
    pub fn refresh_count(&self, o: RefreshOutcome) -> u64 {
        REFRESH_OUTCOMES
            .iter()
            .position(|(x, _)| *x == o)
            .map_or(0, |i| self.refreshes[i].load(Ordering::Relaxed))
    }

    fn observe(&self, status: u16, seconds: f64) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP session_api_refreshes_total Refresh requests by outcome."
        );
        let _ = writeln!(s, "# TYPE session_api_refreshes_total counter");
        for (i, (_, name)) in REFRESH_OUTCOMES.iter().enumerate() {
            let v = self.refreshes[i].load(Ordering::Relaxed);
            let _ = writeln!(s, "session_api_refreshes_total{{outcome=\"{name}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP session_api_signins_total Sign-in attempts by outcome."
        );
        let _ = writeln!(s, "# TYPE session_api_signins_total counter");
        for (i, (_, name)) in SIGNIN_OUTCOMES.iter().enumerate() {
            let v = self.signins[i].load(Ordering::Relaxed);
            let _ = writeln!(s, "session_api_signins_total{{outcome=\"{name}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP session_api_http_responses_total HTTP responses by status."
        );
        let _ = writeln!(s, "# TYPE session_api_http_responses_total counter");
        for (status, n) in self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "session_api_http_responses_total{{status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP session_api_http_request_duration_seconds Request latency."
        );
        let _ = writeln!(
            s,
            "# TYPE session_api_http_request_duration_seconds histogram"
        );
        let count = self.latency_count.load(Ordering::Relaxed);
        for (i, b) in BUCKETS.iter().enumerate() {
            let v = self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "session_api_http_request_duration_seconds_bucket{{le=\"{b}\"}} {v}"
            );
        }
        let _ = writeln!(
            s,
            "session_api_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "session_api_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(s, "session_api_http_request_duration_seconds_count {count}");
        s
    }
}

/// Middleware: counts every response by status and observes its latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let res = next.run(req).await;
    state
        .metrics()
        .observe(res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

/// The database pool's safety net (see `db::net`): connections it had to close.
fn render_pool(db: &crate::db::Db) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP session_api_db_connections_discarded_total Pooled database connections closed \
         instead of reused: came back inside a transaction, or their release check failed."
    );
    let _ = writeln!(
        s,
        "# TYPE session_api_db_connections_discarded_total counter"
    );
    for (reason, n) in [
        ("open_transaction", db.discarded_connections()),
        ("check_failed", db.failed_release_checks()),
    ] {
        let _ = writeln!(
            s,
            "session_api_db_connections_discarded_total{{reason=\"{reason}\"}} {n}"
        );
    }
    s
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render() + &render_pool(state.db()),
    )
}

/// `GET /metrics`.
pub fn router() -> Router<AppState> {
    Router::new().route(api_types::paths::METRICS, get(metrics))
}
