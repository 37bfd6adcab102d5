//! The single-flight refresh. In this tab, one shared future: every caller joins it. Across tabs,
//! the lease lock: the holder refreshes and broadcasts before releasing; a tab that gets the lock
//! and finds a newer generation (in storage, or by a broadcast on its way) adopts it instead of
//! spending — with rotation, burning — the refresh token. The answer is classified by
//! [`verdict`] and applied by [`answered`], both pure.

use std::rc::Rc;

use futures::future::{FutureExt, LocalBoxFuture};

use api_types::{paths, RefreshRequest, RefreshResponse};

use super::super::claims::read_claims;
use super::super::error::{classify_refresh_status, FailureKind};
use super::super::events::SessionEvent;
use super::super::policy::{self, TokenTiming};
use super::super::ports::{Area, HttpRequest, HttpResponse};
use super::super::time::parse_http_date;
use super::super::types::{LogoutReason, UserInfo};
use super::logout::{self, Tell};
use super::persist::{self as store, stored_generation};
use super::state::{Effect, Got, Obtained, Phase, State, Trouble};
use super::{
    Inner, RefreshResult, ADOPT_POLL_MS, ADOPT_WAIT_MS, LEASE_MS, LOCK_POLL_MS, SETTLE_MS,
};

/// What a failed refresh means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Keep the session, retry later.
    Transient,
    /// End the session for this reason.
    End(LogoutReason),
    /// The session is gone already: nothing to do.
    Void,
}

/// Classifies `kind`; `unexpected`: unexpected answers in a row before this one;
/// `family_ended`: the session's absolute end has passed.
pub(crate) fn verdict(kind: &FailureKind, unexpected: u32, family_ended: bool) -> Verdict {
    if *kind == FailureKind::NoSession {
        return Verdict::Void;
    }
    let kept_coming =
        kind.is_unexpected_answer() && unexpected + 1 >= policy::MAX_UNEXPECTED_ANSWERS;
    if kind.is_transient() && !kept_coming {
        return Verdict::Transient;
    }
    Verdict::End(match kind {
        FailureKind::Rejected {
            code: Some(code), ..
        } => match code.as_str() {
            "refresh_token_reused" => LogoutReason::ReuseDetected,
            "refresh_token_expired" => LogoutReason::Expired,
            _ if family_ended => LogoutReason::Expired,
            _ => LogoutReason::RefreshRejected,
        },
        // Servers without codes (the tutorial's): read the message.
        FailureKind::Rejected { message, .. } => {
            let m = message.to_ascii_lowercase();
            if m.contains("reuse") || m.contains("revoked") {
                LogoutReason::ReuseDetected
            } else if m.contains("expired") || family_ended {
                LogoutReason::Expired
            } else {
                LogoutReason::RefreshRejected
            }
        }
        // Unexpected answers that kept coming (see MAX_UNEXPECTED_ANSWERS).
        _ => LogoutReason::RefreshRejected,
    })
}

/// Whether the session's absolute end (the server's `refreshExpiresIn`) has passed. The browser
/// drops the refresh cookie then (its `Max-Age` is the same remaining lifetime), so the server's
/// refusal says "no refresh token" rather than "expired", though expiry is why.
pub(crate) fn family_ended(st: &State, now: f64) -> bool {
    st.token()
        .and_then(|t| t.timeline.as_ref())
        .and_then(|t| t.family_ends_at_ms)
        .is_some_and(|end| now >= end)
}

/// The tokens a successful refresh brought, whatever the protocol.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Fresh {
    pub access: String,
    /// A rotated refresh token; `None`: the previous one stays (cookie mode: it is the cookie).
    pub refresh: Option<String>,
    /// OpenID Connect: a new ID token; `None`: the previous one stays.
    pub id_token: Option<String>,
    /// The roles the answer states; empty: the session's stay.
    pub roles: Vec<String>,
    /// Backend for frontend: the user as the server states it (a restore needs no profile
    /// hint), and the server-side session.
    pub user: Option<UserInfo>,
    pub bff: Option<String>,
}

impl From<RefreshResponse> for Fresh {
    /// Our server's and the tutorial's answer: roles from the access token's claims.
    fn from(r: RefreshResponse) -> Fresh {
        let roles = read_claims(&r.access_token)
            .map(|f| f.custom.roles)
            .unwrap_or_default();
        Fresh {
            access: r.access_token,
            refresh: r.refresh_token,
            id_token: None,
            roles,
            user: None,
            bff: None,
        }
    }
}

/// A refresh request's 2xx answer, and the times the timeline needs.
pub(super) struct Sent {
    pub resp: HttpResponse,
    pub sent_at: f64,
    pub received_at: f64,
    /// The answer's `Date` (server clock, ms), when readable.
    pub date: Option<f64>,
}

/// A refresh's answer, and what the shell read for it.
pub(crate) struct Answer {
    pub result: Result<(Fresh, TokenTiming), FailureKind>,
    /// Cookie-mode restore: who the profile hint says is signed in.
    pub profile: Option<UserInfo>,
    /// Whether the session is remembered (cookie mode: storage's flag).
    pub remembered: bool,
    pub stored_generation: u64,
    pub jitter: f64,
}

/// Applies a refresh's answer: a new token, a transient failure (session kept, backoff), or the
/// end of the session. `epoch`: the epoch the refresh started under (a result from another is
/// void: signed out or in again meanwhile).
pub(crate) fn answered(
    st: &mut State,
    a: Answer,
    epoch: u64,
    now: f64,
) -> (RefreshResult, Vec<Effect>) {
    if st.epoch != epoch {
        return (Err(FailureKind::NoSession), Vec::new());
    }
    let kind = match a.result {
        Ok((fresh, timing)) => {
            // The session keeps its area, its "remember me" choice and, when the answer carries
            // no new refresh token (a non-rotating server) or ID token, the previous ones.
            let (mut user, area, remember, refresh, id_token, got) = match st.token() {
                Some(t) => {
                    let remember = t.area.map_or(a.remembered, |ar| ar == Area::Local);
                    (
                        t.user.clone(),
                        t.area,
                        remember,
                        t.refresh.clone(),
                        t.id_token.clone(),
                        Got::Refresh,
                    )
                }
                None => match fresh.user.clone().or(a.profile) {
                    Some(p) => (p, None, a.remembered, None, None, Got::Restore),
                    None => return (Err(FailureKind::NoSession), Vec::new()),
                },
            };
            if let Some(u) = fresh.user {
                user = u;
            }
            if !fresh.roles.is_empty() {
                user.roles = fresh.roles;
            }
            let obtained = Obtained {
                access: fresh.access,
                refresh: fresh.refresh.or(refresh),
                id_token: fresh.id_token.or(id_token),
                user,
                timing,
                area,
                remember,
                got,
                bff: fresh.bff,
            };
            let (gen, effects) = st.install(obtained, a.stored_generation);
            return (Ok(gen), effects);
        }
        Err(kind) => kind,
    };
    if st.tab.bff && matches!(st.phase, Phase::Restoring { .. }) {
        if let FailureKind::Rejected {
            code: Some(code), ..
        } = &kind
        {
            if code == api_types::codes::BFF_NO_SESSION {
                // No cookie: nobody signed in from this browser. Nothing ended, nothing to say
                // (and no tab to tell: they share the cookie jar).
                logout::nobody(st);
                return (Err(kind), Vec::new());
            }
        }
    }
    let unexpected = st.trouble().map_or(0, |t| t.unexpected);
    match verdict(&kind, unexpected, family_ended(st, now)) {
        Verdict::Void => (Err(kind), Vec::new()),
        Verdict::Transient => {
            let was_degraded = st.degraded();
            let retry_after = match &kind {
                FailureKind::RateLimited { retry_after_ms } => *retry_after_ms,
                _ => None,
            };
            if let Some(slot) = st.trouble_mut() {
                let (failures, unexpected) =
                    slot.as_ref().map_or((0, 0), |t| (t.failures, t.unexpected));
                let failures = failures + 1;
                *slot = Some(Trouble {
                    failures,
                    unexpected: unexpected + u32::from(kind.is_unexpected_answer()),
                    retry_at: Some(now + policy::backoff_ms(failures, a.jitter, retry_after)),
                    last: kind.clone(),
                });
            }
            let mut effects = vec![Effect::Emit(SessionEvent::RefreshFailed(kind.clone()))];
            if !was_degraded {
                effects.push(Effect::Emit(SessionEvent::Degraded));
            }
            effects.push(Effect::Reschedule);
            (Err(kind), effects)
        }
        Verdict::End(reason) => {
            let mut effects = vec![Effect::Emit(SessionEvent::RefreshFailed(kind.clone()))];
            let tell = Tell {
                server: false,
                tabs: true,
            };
            effects.extend(logout::end(st, reason, None, tell));
            (Err(kind), effects)
        }
    }
}

impl Inner {
    /// Single-flight: a newer generation than `base` already in use -> done; a refresh of this
    /// epoch in flight -> join it; else start one.
    pub(super) fn refresh_from(
        self: &Rc<Self>,
        base: u64,
    ) -> LocalBoxFuture<'static, RefreshResult> {
        let epoch = {
            let st = self.st.borrow();
            match &st.phase {
                Phase::SignedIn { token, .. } if token.generation > base => {
                    return futures::future::ready(Ok(token.generation)).boxed_local()
                }
                Phase::SignedOut { .. } => {
                    return futures::future::ready(Err(FailureKind::NoSession)).boxed_local()
                }
                _ => st.epoch,
            }
        };
        let mut flight = self.flight.borrow_mut();
        if let Some((_, e, f)) = &flight.inflight {
            if *e == epoch {
                return f.clone().boxed_local();
            }
        }
        flight.seq += 1;
        let seq = flight.seq;
        let inner = self.clone();
        let fut = async move {
            let r = Inner::run_refresh(&inner, base, epoch).await;
            let mut flight = inner.flight.borrow_mut();
            if flight.inflight.as_ref().is_some_and(|(s, _, _)| *s == seq) {
                flight.inflight = None;
            }
            r
        }
        .boxed_local()
        .shared();
        flight.inflight = Some((seq, epoch, fut.clone()));
        fut.boxed_local()
    }

    /// A refresh of the current epoch is in flight in this tab.
    pub(super) fn refreshing(&self) -> bool {
        let epoch = self.st.borrow().epoch;
        self.flight
            .borrow()
            .inflight
            .as_ref()
            .is_some_and(|(_, e, _)| *e == epoch)
    }

    /// Storage counts a generation newer than any this tab has seen since `base`.
    fn newer_in_storage(&self, base: u64) -> bool {
        stored_generation(&*self.ports.storage) > base.max(self.st.borrow().generation)
    }

    fn adopted_since(&self, base: u64) -> Option<u64> {
        self.st
            .borrow()
            .token()
            .filter(|t| t.generation > base)
            .map(|t| t.generation)
    }

    async fn run_refresh(self: &Rc<Self>, base: u64, epoch: u64) -> RefreshResult {
        let start = self.now();
        let mut locked = false;
        loop {
            if let Some(g) = self.adopted_since(base) {
                return Ok(g);
            }
            if self.st.borrow().epoch != epoch {
                return Err(FailureKind::NoSession);
            }
            if self
                .ports
                .lock
                .try_acquire(&self.tab_id, self.now(), LEASE_MS)
                .await
            {
                locked = true;
                break;
            }
            if self.now() - start >= LEASE_MS {
                // The holder's lease ran out (tab frozen or killed mid-refresh): go on without.
                break;
            }
            self.ports.sleeper.sleep(LOCK_POLL_MS).await;
        }
        self.changes.notify();
        // A tab that refreshed keeps the lock until its news has had time to reach the others
        // (SETTLE_MS, below), so a newer token is usually adopted by now. One that storage
        // already counts but whose broadcast is still on its way: wait for it rather than spend
        // (with rotation: burn) the refresh token a second time.
        if self.newer_in_storage(base) {
            let wait_start = self.now();
            loop {
                if !self.cookie_mode() && self.newer_in_storage(base) {
                    self.adopt_from_storage();
                }
                if let Some(g) = self.adopted_since(base) {
                    if locked {
                        self.ports.lock.release(&self.tab_id);
                    }
                    self.changes.notify();
                    return Ok(g);
                }
                if self.now() - wait_start >= ADOPT_WAIT_MS {
                    break;
                }
                self.ports.sleeper.sleep(ADOPT_POLL_MS).await;
            }
        }
        let result = self.send_refresh().await;
        // Apply (and broadcast) before releasing, so a tab waiting for the lock finds the news.
        let storage = &*self.ports.storage;
        let answer = Answer {
            result,
            profile: store::profile(storage),
            remembered: !store::not_remembered(storage),
            stored_generation: stored_generation(storage),
            jitter: self.ports.random.next_f64(),
        };
        let (result, effects) = answered(&mut self.st.borrow_mut(), answer, epoch, self.now());
        self.run(effects);
        if locked && result.is_ok() {
            // Only the lock is ordered with the refresh; the storage write and the broadcast
            // reach tabs in other processes a moment later. Keep the lock until they have had
            // time to, so a tab that comes for it meanwhile waits for the news (above) instead
            // of refreshing again. This tab's own callers have their token already.
            let inner = self.clone();
            let settle = self.ports.sleeper.sleep(SETTLE_MS);
            self.ports.spawner.spawn(Box::pin(async move {
                settle.await;
                inner.ports.lock.release(&inner.tab_id);
                inner.changes.notify();
            }));
        } else if locked {
            self.ports.lock.release(&self.tab_id);
        }
        self.changes.notify();
        result
    }

    /// Sends a refresh request, whatever the protocol (counted in the stats), and classifies a
    /// non-2xx answer in the one place (`classify_refresh_status`, `Retry-After` anchored on the
    /// server's clock: its `Date`, else ours corrected by the offset).
    pub(super) async fn send_refresh_request(
        self: &Rc<Self>,
        req: HttpRequest,
    ) -> Result<Sent, FailureKind> {
        self.st.borrow_mut().stats.refresh_requests += 1;
        let sent_at = self.now();
        let resp = self.ports.transport.send(req).await?;
        let received_at = self.now();
        let date = resp.header("date").and_then(parse_http_date);
        if resp.status == 401 && self.cfg.bff() {
            self.note_login_kind(&resp.body);
        }
        if !(200..300).contains(&resp.status) {
            let offset = self.st.borrow().clock_offset;
            return Err(classify_refresh_status(
                &resp,
                date.unwrap_or(received_at + offset),
            ));
        }
        Ok(Sent {
            resp,
            sent_at,
            received_at,
            date,
        })
    }

    /// The refresh token to present when the app holds it (compat mode, OpenID Connect).
    /// Storage is the source of truth: another tab may have rotated it.
    pub(super) fn held_refresh_token(&self) -> Result<String, FailureKind> {
        let (area, own) = {
            let st = self.st.borrow();
            let t = st.token();
            (
                t.and_then(|t| t.area).unwrap_or(Area::Local),
                t.and_then(|t| t.refresh.clone()),
            )
        };
        let from_storage =
            store::stored_user(&*self.ports.storage, area).and_then(|u| u.refresh_token);
        from_storage.or(own).ok_or(FailureKind::NoSession)
    }

    /// The refresh request and its answer, read.
    async fn send_refresh(self: &Rc<Self>) -> Result<(Fresh, TokenTiming), FailureKind> {
        if self.cfg.oidc() {
            return self.send_oidc_refresh().await;
        }
        if self.cfg.bff() {
            return self.read_bff_session().await;
        }
        let refresh_token = if self.cookie_mode() {
            None
        } else {
            Some(self.held_refresh_token()?)
        };
        let body = serde_json::to_string(&RefreshRequest { refresh_token }).unwrap_or_default();
        // "Remember me" off: the rotated cookie stays a browser-session cookie.
        let not_remembered = self.cookie_mode() && store::not_remembered(&*self.ports.storage);
        let req = self.token_post(paths::REFRESH, body, not_remembered);
        let sent = self.send_refresh_request(req).await?;
        let parsed: RefreshResponse =
            serde_json::from_str(&sent.resp.body).map_err(|_| FailureKind::Decode)?;
        let facts = read_claims(&parsed.access_token).map_err(|_| FailureKind::Decode)?;
        let timing = TokenTiming {
            sent_at_ms: sent.sent_at,
            received_at_ms: sent.received_at,
            date_header_ms: sent.date,
            iat_ms: facts.iat_ms,
            exp_ms: facts.exp_ms,
            expires_in_s: parsed.expires_in,
            refresh_expires_in_s: parsed.refresh_expires_in,
        };
        Ok((parsed.into(), timing))
    }
}
