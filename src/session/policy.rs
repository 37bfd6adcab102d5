//! Scheduling policies, all pure functions of their inputs (now is always passed in).
//!
//! - Clock offset: server time minus browser time, from the response's `Date` header (1 s
//!   resolution, so +500 ms centres it) or, when cross-origin hides `Date`, from the token's `iat`.
//! - Expiry: from `expiresIn` counted from the response's arrival when the server sends it (no
//!   clock involved at all) and from `exp` shifted by the offset, whichever is earlier.
//! - Margin: `min(configured or 60 s, 10 % of the lifetime)`, so a 3 s token refreshes at 2.7 s
//!   instead of immediately and forever, and a session makes about one refresh per lifetime
//!   (a larger fraction would refresh more often than the tokens expire: 25 % is 1.33 per
//!   lifetime). Requests never wait on it: one about to leave with a nearly expired token
//!   waits for the refresh instead.
//! - Minimum interval between two refreshes, so even a token that arrives already "expired"
//!   (a wildly wrong clock) cannot cause a storm.
//! - Backoff with full jitter for transient failures; 429 waits at least `Retry-After`.

use super::types::Timeline;

/// Default upper bound of the margin.
pub const DEFAULT_MAX_MARGIN_MS: f64 = 60_000.0;
/// Fraction of the lifetime used as margin.
pub const MARGIN_FRACTION: f64 = 0.10;
/// Resolution of `exp`/`iat` (whole seconds) and so of an expiry read from them.
pub const EXP_RESOLUTION_MS: f64 = 1_000.0;
/// Floor of the interval between refreshes.
pub const MIN_REFRESH_INTERVAL_MS: f64 = 1_000.0;
/// First backoff step.
pub const BACKOFF_BASE_MS: f64 = 1_000.0;
/// Backoff ceiling.
pub const BACKOFF_MAX_MS: f64 = 60_000.0;
/// Unexpected answers to refreshes (an unreadable 200, a 4xx that is not 401/403/408/429) in a
/// row, without a success between them, that end the session; retrying the same request is
/// not going to change them, and retrying forever hides a broken deployment from the user.
pub const MAX_UNEXPECTED_ANSWERS: u32 = 3;

/// What the engine learnt from one token response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenTiming {
    /// Browser time the request was sent.
    pub sent_at_ms: f64,
    /// Browser time the response arrived.
    pub received_at_ms: f64,
    /// The response's `Date` header, Unix ms (server clock).
    pub date_header_ms: Option<f64>,
    /// `iat` (server clock).
    pub iat_ms: Option<f64>,
    /// `exp` (server clock).
    pub exp_ms: Option<f64>,
    /// `expiresIn`, seconds.
    pub expires_in_s: Option<u64>,
    /// `refreshExpiresIn`, seconds.
    pub refresh_expires_in_s: Option<u64>,
}

/// Estimated server-minus-browser clock offset.
pub fn clock_offset_ms(t: &TokenTiming, previous: f64) -> f64 {
    let midpoint = (t.sent_at_ms + t.received_at_ms) / 2.0;
    if let Some(date) = t.date_header_ms {
        return date + 500.0 - midpoint;
    }
    if let Some(iat) = t.iat_ms {
        // iat has 1 s resolution and was stamped while the request was being served.
        return iat + 500.0 - midpoint;
    }
    previous
}

/// The margin for a lifetime: a fraction of it (so about one refresh per lifetime), at least the
/// uncertainty of the expiry estimate, at most the cap and half the lifetime (so a very short
/// token cannot make refreshes back to back).
pub fn margin_ms(lifetime_ms: f64, configured_max_ms: Option<f64>, uncertainty_ms: f64) -> f64 {
    let cap = configured_max_ms.unwrap_or(DEFAULT_MAX_MARGIN_MS);
    let lifetime = lifetime_ms.max(0.0);
    (lifetime * MARGIN_FRACTION)
        .max(uncertainty_ms)
        .min(lifetime * 0.5)
        .min(cap)
}

/// Minimum time between two refreshes for a lifetime.
pub fn min_interval_ms(lifetime_ms: f64) -> f64 {
    MIN_REFRESH_INTERVAL_MS.max((lifetime_ms * 0.5).min(30_000.0))
}

/// The timeline of a token, or `None` when neither `expiresIn` nor `exp` is known (then the
/// engine refreshes only on a 401).
pub fn timeline(
    t: &TokenTiming,
    previous_offset: f64,
    margin_cap: Option<f64>,
) -> Option<Timeline> {
    let offset = clock_offset_ms(t, previous_offset);
    let expires_at = match (t.expires_in_s, t.exp_ms) {
        // `expiresIn` is counted from the response's arrival on the browser's own clock: no
        // offset involved, sub-second precise. `exp - offset` carries the 1 s resolution of
        // `exp` and of the offset estimate, so it only overrides `expiresIn` when it is earlier
        // by more than that (a server whose `expiresIn` overstates the token's life).
        (Some(secs), Some(exp)) => {
            (t.received_at_ms + secs as f64 * 1000.0).min(exp - offset + EXP_RESOLUTION_MS)
        }
        (Some(secs), None) => t.received_at_ms + secs as f64 * 1000.0,
        (None, Some(exp)) => exp - offset,
        (None, None) => return None,
    };
    let issued_at = match (t.expires_in_s, t.iat_ms) {
        (None, Some(iat)) => (iat - offset).min(t.received_at_ms),
        _ => t.received_at_ms,
    };
    let lifetime = expires_at - issued_at;
    // What the estimate of `expires_at` can be off by: the round trip, plus the 1 s resolution
    // of `exp` when there was no `expiresIn`.
    let round_trip = (t.received_at_ms - t.sent_at_ms).max(0.0);
    let uncertainty = round_trip
        + if t.expires_in_s.is_some() {
            0.0
        } else {
            EXP_RESOLUTION_MS
        };
    let refresh_at = (expires_at - margin_ms(lifetime, margin_cap, uncertainty))
        .max(t.received_at_ms + min_interval_ms(lifetime));
    Some(Timeline {
        issued_at_ms: issued_at,
        refresh_at_ms: refresh_at,
        expires_at_ms: expires_at,
        family_ends_at_ms: t
            .refresh_expires_in_s
            .map(|s| t.received_at_ms + s as f64 * 1000.0),
        clock_offset_ms: offset,
    })
}

/// Whether a request about to be sent at `now` should wait for a refresh first: the token is
/// past its refresh point's last safe moment (a small send guard before expiry), unless it was
/// obtained so recently that refreshing again would be a loop.
pub fn must_refresh_before_send(tl: &Timeline, obtained_at_ms: f64, now_ms: f64) -> bool {
    let lifetime = tl.expires_at_ms - tl.issued_at_ms;
    let guard = (lifetime * 0.1).clamp(0.0, 5_000.0);
    now_ms >= tl.expires_at_ms - guard && now_ms - obtained_at_ms >= min_interval_ms(lifetime)
}

/// Delay before retry number `failures` (1-based), with full jitter in `[0.5, 1)` of the step,
/// and at least the server's `Retry-After`.
pub fn backoff_ms(failures: u32, random01: f64, retry_after_ms: Option<f64>) -> f64 {
    let step = (BACKOFF_BASE_MS * 2f64.powi(failures.saturating_sub(1).min(16) as i32))
        .min(BACKOFF_MAX_MS);
    let jittered = step * (0.5 + 0.5 * random01.clamp(0.0, 1.0));
    jittered.max(retry_after_ms.unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(expires_in: Option<u64>) -> TokenTiming {
        TokenTiming {
            sent_at_ms: 1_000_000.0,
            received_at_ms: 1_000_100.0,
            date_header_ms: None,
            iat_ms: Some(1_000_000.0),
            exp_ms: Some(1_003_000.0),
            expires_in_s: expires_in,
            refresh_expires_in_s: None,
        }
    }

    #[test]
    fn margin_adapts_to_short_lifetimes() {
        assert_eq!(margin_ms(3_000.0, None, 0.0), 300.0);
        assert_eq!(margin_ms(3_000.0, None, 1_000.0), 1_000.0);
        assert_eq!(margin_ms(3_000.0, None, 5_000.0), 1_500.0);
        assert_eq!(margin_ms(900_000.0, None, 0.0), 60_000.0);
        assert_eq!(margin_ms(900_000.0, Some(10_000.0), 0.0), 10_000.0);
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        assert_eq!(backoff_ms(1, 1.0, None), 1_000.0);
        assert_eq!(backoff_ms(3, 1.0, None), 4_000.0);
        assert_eq!(backoff_ms(30, 1.0, None), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(1, 0.0, None), 500.0);
        assert_eq!(backoff_ms(1, 0.0, Some(7_000.0)), 7_000.0);
    }

    /// A 3 s token refreshes at 90 % of its life less what the expiry estimate may be off by,
    /// never sooner than the minimum interval after its arrival. (Was named "at three quarters"
    /// and only checked "> 2 s after issue", which a 25 % or 50 % margin passes as well.)
    #[test]
    fn three_second_token_refreshes_at_nine_tenths_less_the_uncertainty() {
        let received = 1_000_100.0;
        // With `expiresIn`: the life is counted from the arrival, the uncertainty is the 100 ms
        // round trip, below the 10 % margin: refresh at 2.7 s of the 3 s.
        let tl = timeline(&timing(Some(3)), 0.0, None).unwrap();
        assert_eq!(tl.issued_at_ms, received);
        assert_eq!(tl.expires_at_ms, received + 3_000.0);
        assert_eq!(tl.refresh_at_ms, received + 2_700.0);
        // From `exp` alone (shifted by the offset read from `iat`, 450 ms): the token ends
        // 2.45 s after arrival, known only to its 1 s resolution plus the round trip, so the
        // margin is 1.1 s (not 10 %) and the refresh would be due 1.35 s after arrival; the
        // minimum interval (half the life) moves it to 1.5 s after arrival.
        let tl = timeline(&timing(None), 0.0, None).unwrap();
        assert_eq!(tl.clock_offset_ms, 450.0);
        assert_eq!(tl.expires_at_ms - tl.issued_at_ms, 3_000.0);
        assert_eq!(tl.expires_at_ms, received + 2_450.0);
        assert_eq!(tl.refresh_at_ms, received + 1_500.0);
        // The same for a 10 s token, where the floor does not interfere: 1.1 s before its end.
        let ten = TokenTiming {
            exp_ms: Some(1_010_000.0),
            ..timing(None)
        };
        let tl = timeline(&ten, 0.0, None).unwrap();
        assert_eq!(tl.expires_at_ms, received + 9_450.0);
        assert_eq!(tl.refresh_at_ms, received + 8_350.0);
    }
}
