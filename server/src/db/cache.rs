//! The per-instance cache of what an access-token check needs: per user, the roles, the
//! password-changed time and the ids (with their ends) of families seen live.
//!
//! Every write that can end a session or change those fields (sign-out, a session ended,
//! reuse revocation, password change, sign-out of others / everywhere, account deletion)
//! announces the user's id in its own transaction, so the announcement exists only if the
//! write commits, and drops the user's entry locally after the commit. Other instances learn
//! of it:
//!
//! - PostgreSQL: `NOTIFY session_api_cache, '<user id>'` in the transaction; every instance
//!   `LISTEN`s on one dedicated connection (sqlx's `PgListener`), and PostgreSQL delivers a
//!   notification only on commit, in commit order.
//! - SQLite: one row in `cache_events` in the transaction (migration 0003), read every 100 ms
//!   by each instance (`seq > last seen`). SQLite has no NOTIFY and several processes (or, in
//!   the tests, several pools) may share the file, so an in-process signal alone would leave
//!   the other instances serving a revoked session; disabling the cache on SQLite would give
//!   up the speed for the common single-process case. Commits are serialised on SQLite, so
//!   `seq` order is commit order and the poll misses nothing; the rows are purged after 1 h.
//!
//! Freshness is a lease, never assumed. Each instance knows how recent its view is: on
//! PostgreSQL it sends itself a ping (`NOTIFY` with its own id and the send time) every
//! 100 ms over the listening connection; a ping received means every notification committed
//! before it was sent has been applied (same queue, commit order). On SQLite a poll that
//! succeeded means every event committed before it started has been applied. The cache is
//! used only while that moment is at most 500 ms old; otherwise — listener connection lost,
//! killed, half-open, the database down, a stalled task — every check reads the database, and
//! nothing read is cached. So a revocation committed anywhere is seen by every instance
//! within about 500 ms (plus the ping period), and a lost listener never yields a stale
//! "still valid". On a (re)connection the listener first `LISTEN`s, then empties the cache:
//! whatever was missed while it was away is forgotten, and pings sent before the `LISTEN`
//! do not count.
//!
//! A database read that raced an invalidation must not put back what was just invalidated:
//! every invalidation bumps an epoch (under the lock), and a read caches its result only if
//! the epoch did not move while it ran.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::{AnyPool, Executor, Row};

/// The PostgreSQL channel of invalidations and pings.
pub(super) const CHANNEL: &str = "session_api_cache";
/// How old the view may be for the cache to be used.
pub(super) const LEASE: Duration = Duration::from_millis(500);
/// How often each instance pings itself (PostgreSQL) or polls `cache_events` (SQLite).
const PERIOD: Duration = Duration::from_millis(100);
/// Users kept at most (the map is emptied when full: simple, and a miss only costs one read).
const MAX_USERS: usize = 200_000;
/// Live families kept per user at most (more are simply read each time).
const MAX_FAMILIES_PER_USER: usize = 64;

/// What a token check needs of its user and session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    /// Current roles.
    pub roles: Vec<String>,
    /// When the password was last set (ms): tokens issued before are refused.
    pub password_changed_at: i64,
    /// Whether the token's family is live (not revoked, not past its end).
    pub live: bool,
}

#[derive(Debug)]
struct Entry {
    roles: Vec<String>,
    password_changed_at: i64,
    /// Family id -> its absolute end (ms), for families read live.
    families: HashMap<String, i64>,
}

/// The cache of one instance (one `Db` and its clones).
#[derive(Debug)]
pub(super) struct Cache {
    enabled: bool,
    users: Mutex<HashMap<i64, Entry>>,
    /// Bumped on every invalidation, under the `users` lock.
    epoch: AtomicU64,
    start: Instant,
    /// Milliseconds since `start` (+1) up to which every committed invalidation has been
    /// applied; 0: not synchronised.
    fresh_as_of: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
}

impl Cache {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            users: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            start: Instant::now(),
            fresh_as_of: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bypasses: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// Whether the view is recent enough to answer from memory.
    pub(super) fn fresh(&self) -> bool {
        let f = self.fresh_as_of.load(Ordering::Acquire);
        f != 0 && self.now() <= f + LEASE.as_millis() as u64
    }

    /// Everything committed before `as_of` (a `now()` value) has been applied.
    fn synchronised_as_of(&self, as_of: u64) {
        self.fresh_as_of.fetch_max(as_of, Ordering::AcqRel);
    }

    /// The view is lost: stop answering from memory at once and forget everything.
    pub(super) fn lost(&self) {
        self.fresh_as_of.store(0, Ordering::Release);
        self.invalidate_all();
    }

    /// The epoch a read must see unchanged to cache its result.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The cached answer, when the cache may be used and has one.
    pub(super) fn get(&self, user_id: i64, family_id: &str, now_ms: i64) -> Option<TokenSubject> {
        if !self.enabled {
            return None;
        }
        if !self.fresh() {
            self.bypasses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let hit = users.get(&user_id).and_then(|e| {
            let end = *e.families.get(family_id)?;
            (now_ms < end).then(|| TokenSubject {
                roles: e.roles.clone(),
                password_changed_at: e.password_changed_at,
                live: true,
            })
        });
        drop(users);
        match hit {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        hit
    }

    /// Caches what a read that started at `epoch` found: only a live family, only while the
    /// view is fresh, and only if nothing was invalidated meanwhile.
    pub(super) fn put(
        &self,
        epoch: u64,
        user_id: i64,
        family_id: &str,
        family_end: i64,
        s: &TokenSubject,
    ) {
        if !self.enabled || !s.live || !self.fresh() {
            return;
        }
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if users.len() >= MAX_USERS && !users.contains_key(&user_id) {
            users.clear();
        }
        let e = users.entry(user_id).or_insert_with(|| Entry {
            roles: Vec::new(),
            password_changed_at: 0,
            families: HashMap::new(),
        });
        e.roles.clone_from(&s.roles);
        e.password_changed_at = s.password_changed_at;
        if e.families.len() < MAX_FAMILIES_PER_USER || e.families.contains_key(family_id) {
            e.families.insert(family_id.to_owned(), family_end);
        }
    }

    /// Forgets a user (their fields or one of their families changed).
    pub(super) fn invalidate(&self, user_id: i64) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.remove(&user_id);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets everything.
    pub(super) fn invalidate_all(&self) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// (hits, misses, bypasses): answered from memory, read because not cached, read because
    /// the view was not fresh.
    pub(super) fn counts(&self) -> (u64, u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.bypasses.load(Ordering::Relaxed),
        )
    }

    /// Applies one payload of the PostgreSQL channel. `instance`/`listening_since`: our own
    /// pings, sent after our `LISTEN` began, are what make the view fresh.
    fn apply(&self, payload: &str, instance: &str, listening_since: u64) {
        if let Some(ping) = payload.strip_prefix("p:") {
            let Some((from, sent)) = ping.rsplit_once(':') else {
                return;
            };
            if from == instance {
                if let Ok(sent) = sent.parse::<u64>() {
                    if sent >= listening_since {
                        self.synchronised_as_of(sent);
                    }
                }
            }
            return;
        }
        match payload.parse::<i64>() {
            Ok(user_id) => self.invalidate(user_id),
            // Not ours to read: forget everything rather than guess.
            Err(_) => self.invalidate_all(),
        }
    }
}

/// Starts the task that keeps `cache` in step with the other instances; it ends when the
/// cache is dropped or the pool closed.
pub(super) fn start(cache: &Arc<Cache>, pool: AnyPool, url: String, postgres: bool) {
    if !cache.enabled {
        return;
    }
    let weak = Arc::downgrade(cache);
    if postgres {
        tokio::spawn(listen_postgres(weak, pool, url));
    } else {
        tokio::spawn(poll_sqlite(weak, pool));
    }
}

/// Whether the task should stop: the cache is gone or the pool closed.
fn gone(weak: &Weak<Cache>, pool: &AnyPool) -> Option<Arc<Cache>> {
    if pool.is_closed() {
        return None;
    }
    weak.upgrade()
}

async fn listen_postgres(weak: Weak<Cache>, pool: AnyPool, url: String) {
    use sqlx::postgres::PgListener;
    let instance = crate::keys::random_id(12);
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(cache) = gone(&weak, &pool) else {
            return;
        };
        let listening_since = cache.now();
        let connected = async {
            let mut l = PgListener::connect(&url).await?;
            // A lost connection must surface as `Ok(None)` here, not be re-established
            // silently (notifications sent meanwhile would be lost unnoticed).
            l.eager_reconnect(false);
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut l = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "access-token cache: cannot listen; every check reads the database");
                drop(cache);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        // Listening now: forget what may have been missed before.
        cache.invalidate_all();
        tracing::info!("access-token cache: listening for invalidations");
        drop(cache);
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let why = loop {
            tokio::select! {
                // try_recv is cancel-safe (sqlx reads whole messages only).
                n = l.try_recv() => match n {
                    Ok(Some(n)) => match weak.upgrade() {
                        Some(c) => c.apply(n.payload(), &instance, listening_since),
                        None => return,
                    },
                    Ok(None) => break "connection lost".to_owned(),
                    Err(e) => break e.to_string(),
                },
                _ = tick.tick() => {
                    let Some(cache) = gone(&weak, &pool) else { return };
                    let sent = cache.now();
                    drop(cache);
                    let ping = format!("NOTIFY {CHANNEL}, 'p:{instance}:{sent}'");
                    match tokio::time::timeout(LEASE, (&mut l).execute(ping.as_str())).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => break e.to_string(),
                        Err(_) => break "ping timed out".to_owned(),
                    }
                }
            }
        };
        if let Some(c) = weak.upgrade() {
            c.lost();
        }
        tracing::warn!(
            why,
            "access-token cache: listener lost; every check reads the database until it is back"
        );
        drop(l);
    }
}

async fn poll_sqlite(weak: Weak<Cache>, pool: AnyPool) {
    let mut last: Option<i64> = None;
    let mut last_ok = Instant::now();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls: u64 = 0;
    loop {
        tick.tick().await;
        let Some(cache) = gone(&weak, &pool) else {
            return;
        };
        let started = cache.now();
        let res = match last {
            None => sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM cache_events")
                .fetch_one(&pool)
                .await
                .and_then(|r| r.try_get::<i64, _>(0))
                .map(|max| (max, Vec::new())),
            Some(after) => {
                sqlx::query("SELECT seq, user_id FROM cache_events WHERE seq > $1 ORDER BY seq")
                    .bind(after)
                    .fetch_all(&pool)
                    .await
                    .and_then(|rows| {
                        let users = rows
                            .iter()
                            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
                            .collect::<Result<Vec<_>, sqlx::Error>>()?;
                        Ok((users.last().map_or(after, |u| u.0), users))
                    })
            }
        };
        match res {
            Ok((max, events)) => {
                // Away so long that events may have been purged: start from nothing.
                if last_ok.elapsed() > Duration::from_secs(600) {
                    cache.invalidate_all();
                }
                for (_, user_id) in events {
                    cache.invalidate(user_id);
                }
                last = Some(max);
                last_ok = Instant::now();
                cache.synchronised_as_of(started);
            }
            Err(e) => {
                if cache.fresh() {
                    tracing::warn!(error = %e, "access-token cache: cannot read cache_events; every check reads the database");
                }
                cache.lost();
            }
        }
        polls += 1;
        if polls.is_multiple_of(600) {
            let purge = pool
                .execute("DELETE FROM cache_events WHERE at < CAST(strftime('%s', 'now') AS INTEGER) - 3600")
                .await;
            if let Err(e) = purge {
                tracing::warn!(error = %e, "access-token cache: purge of cache_events failed");
            }
        }
    }
}
