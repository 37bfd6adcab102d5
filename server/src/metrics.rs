//! The process's Prometheus registry: refresh outcomes, sign-in outcomes, responses by status, a
//! request-latency histogram and the database pool's safety net. It knows nothing of HTTP: the
//! `/metrics` route and the middleware that feeds it live in [`crate::metrics_http`].

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::db::Db;

/// Content type of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

impl RefreshOutcome {
    const ALL: [RefreshOutcome; 7] = [
        Self::Ok,
        Self::Repeated,
        Self::Grace,
        Self::ReuseDetected,
        Self::Invalid,
        Self::Expired,
        Self::CsrfRejected,
    ];

    fn label(self) -> Outcome {
        Outcome {
            outcome: match self {
                Self::Ok => "ok",
                Self::Repeated => "repeated",
                Self::Grace => "grace",
                Self::ReuseDetected => "reuse_detected",
                Self::Invalid => "invalid",
                Self::Expired => "expired",
                Self::CsrfRejected => "csrf_rejected",
            },
        }
    }
}

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

impl SigninOutcome {
    const ALL: [SigninOutcome; 3] = [Self::Ok, Self::Invalid, Self::Throttled];

    fn label(self) -> Outcome {
        Outcome {
            outcome: match self {
                Self::Ok => "ok",
                Self::Invalid => "invalid",
                Self::Throttled => "throttled",
            },
        }
    }
}

/// The `outcome` label of the refresh and sign-in counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The `status` label of the response counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: u16,
}

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// All metrics of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    refreshes: Family<Outcome, Counter>,
    signins: Family<Outcome, Counter>,
    responses: Family<Status, Counter>,
    latency: Histogram,
}

impl Metrics {
    /// The registry, with the pool counters of `db` read at each scrape.
    pub fn new(db: Db) -> Self {
        let refreshes = Family::<Outcome, Counter>::default();
        let signins = Family::<Outcome, Counter>::default();
        let responses = Family::<Status, Counter>::default();
        let latency = Histogram::new(BUCKETS);
        // Every outcome is listed from the start, at 0, so a reader can tell "none" from "absent".
        for o in RefreshOutcome::ALL {
            refreshes.get_or_create_owned(&o.label());
        }
        for o in SigninOutcome::ALL {
            signins.get_or_create_owned(&o.label());
        }
        let mut registry = Registry::default();
        registry.register(
            "session_api_refreshes",
            "Refresh requests by outcome",
            refreshes.clone(),
        );
        registry.register(
            "session_api_signins",
            "Sign-in attempts by outcome",
            signins.clone(),
        );
        registry.register(
            "session_api_http_responses",
            "HTTP responses by status",
            responses.clone(),
        );
        registry.register(
            "session_api_http_request_duration_seconds",
            "Request latency",
            latency.clone(),
        );
        registry.register_collector(Box::new(PoolCollector(db)));
        Self {
            registry,
            refreshes,
            signins,
            responses,
            latency,
        }
    }

    /// Counts a refresh outcome.
    pub fn refresh(&self, o: RefreshOutcome) {
        self.refreshes.get_or_create(&o.label()).inc();
    }

    /// Counts a sign-in outcome.
    pub fn signin(&self, o: SigninOutcome) {
        self.signins.get_or_create(&o.label()).inc();
    }

    /// Refresh count for one outcome (tests).
    pub fn refresh_count(&self, o: RefreshOutcome) -> u64 {
        self.refreshes.get_or_create(&o.label()).get()
    }

    /// Counts a response by status and observes its latency.
    pub fn response(&self, status: u16, seconds: f64) {
        self.responses.get_or_create(&Status { status }).inc();
        self.latency.observe(seconds);
    }

    /// The Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut s, &self.registry);
        s
    }
}

/// The database pool's safety net (see `db::net`): connections it had to close, read from the
/// pool at each scrape.
#[derive(Debug)]
struct PoolCollector(Db);

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "session_api_db_connections_discarded",
            "Pooled database connections closed instead of reused: came back inside a \
             transaction, or their release check failed.",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (reason, n) in [
            ("open_transaction", self.0.discarded_connections()),
            ("check_failed", self.0.failed_release_checks()),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "session_api_access_cache",
            "Access-token checks: answered from this instance's cache (hit), read from the \
             database because not cached (miss), or because the cache was not in step with the \
             database (bypass: listener lost, database unreachable).",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        let (hits, misses, bypasses) = self.0.access_cache_counts();
        for (outcome, n) in [("hit", hits), ("miss", misses), ("bypass", bypasses)] {
            ConstCounter::new(n).encode(family.encode_family(&[("outcome", outcome)])?)?;
        }
        Ok(())
    }
}
