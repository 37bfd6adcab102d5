//! Storage: users, refresh-token families and refresh tokens, on SQLite or PostgreSQL through
//! sqlx's `Any` driver (one code path; `$n` placeholders work on both). Times are Unix ms.
//!
//! Every operation on a family starts with a write to the family row (`UPDATE ... SET
//! last_used_at = last_used_at`): on PostgreSQL that takes the row lock, on SQLite the database
//! write lock, so rotation, sign-out and revocation of one family are serialised and each
//! decision is taken on committed data (compare-and-set under a lock, in one transaction).
//!
//! # Cancel safety
//!
//! axum drops a handler's future when its client hangs up, and the timeout layer drops it after
//! `--request-timeout`. A future dropped while a `BEGIN` is in flight, or between the statements
//! of a transaction, can leave its connection inside a transaction that nothing ends (sqlx's own
//! guards miss the `BEGIN` window: launchbadge/sqlx#2054, #4393), and the pool then lends that
//! connection, with SQLite's write lock or PostgreSQL's row locks, to the next request. So:
//!
//! 1. Every public method is one *unit of work* that [`Db::unit`] runs in a task of its own.
//!    The caller only awaits the task's answer; dropping the caller drops that wait, never the
//!    work, which runs to its `COMMIT` or `ROLLBACK` and gives its connection back. Nothing
//!    that holds a connection ever runs in a request's future.
//! 2. A safety net on the pool ([`net`]): every connection coming back is asked, by the
//!    database itself, whether a transaction is still open; such a connection is closed (the
//!    database rolls the transaction back), never lent again, and counted in `/metrics`
//!    (`session_api_db_connections_discarded_total`). With 1. in place it stays at zero.

mod cache;
mod net;

pub use cache::TokenSubject;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use api_types::SessionInfo;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file), WAL mode.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The connection pool plus what it is connected to.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: one writer at a time inside this process. SQLite allows one writer anyway;
    /// queueing here instead of in SQLite's busy handler (which sleeps up to 100 ms between
    /// retries) keeps write latency low under contention. Other processes still get busy_timeout.
    writer: Option<Arc<Mutex<()>>>,
    /// The pool's safety net and its counters.
    net: Arc<net::Net>,
    /// Run units of work in the caller's future instead of a task (tests of the safety net).
    inline: bool,
    /// What access-token checks need, kept in step with every instance ([`cache`]).
    cache: Arc<cache::Cache>,
}

/// Held while a write runs (SQLite); nothing on PostgreSQL.
type WriteGuard = Option<OwnedMutexGuard<()>>;

/// How a refresh token is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// In the JSON body (the tutorial's way).
    Body,
    /// In the `__Host-refresh` HttpOnly cookie.
    Cookie,
}

impl Transport {
    /// The stored / listed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Body => "body",
            Transport::Cookie => "cookie",
        }
    }
}

/// A user as needed for sign-in.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Roles (`ROLE_*`).
    pub roles: Vec<String>,
    /// When the password was last set (ms).
    pub password_changed_at: i64,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Username taken.
    #[error("username taken")]
    UsernameTaken,
    /// Email taken.
    #[error("email taken")]
    EmailTaken,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A new family (one sign-in) and its first token.
#[derive(Debug, Clone)]
pub struct NewFamily {
    /// Family id (opaque, random).
    pub id: String,
    /// Owner.
    pub user_id: i64,
    /// Transport chosen at sign-in, fixed for the family's life.
    pub transport: Transport,
    /// Short client description.
    pub device: String,
    /// Now (ms).
    pub now: i64,
    /// End of the absolute lifetime (ms).
    pub expires_at: i64,
    /// Hash of the first refresh token.
    pub token_hash: String,
}

/// Input of a rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Hash of the presented token.
    pub token_hash: String,
    /// Hash of its (deterministic) successor.
    pub successor_hash: String,
    /// How the token was presented.
    pub transport: Transport,
    /// Now (ms).
    pub now: i64,
    /// Idle timeout (ms).
    pub idle_ms: i64,
    /// Grace window (ms).
    pub grace_ms: i64,
}

/// The family a successful rotation belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Family id.
    pub family_id: String,
    /// Owner.
    pub user_id: i64,
    /// Owner's roles now.
    pub roles: Vec<String>,
    /// End of the family's absolute lifetime (ms).
    pub expires_at: i64,
}

/// Result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// First use: the successor was stored and the token marked used.
    Rotated(Rotated),
    /// Already rotated, and its successor has never been presented: the same successor again
    /// (a lost answer, a retry, a frozen tab, a client that never stores rotated tokens).
    Repeated(Rotated),
    /// Already rotated and its successor presented too, but within the grace window of this
    /// token's rotation (concurrent tabs): the caller presents the successor in its place to
    /// reach the family's active token. Nothing changed.
    Superseded,
    /// No such token, or the wrong transport. Nothing changed.
    Invalid,
    /// The family was revoked (`reason`: `signout`, `ended_by_user`, `reuse_detected`,
    /// `password_changed`). Nothing changed.
    Ended {
        /// Why it was revoked.
        reason: String,
    },
    /// The family is past its absolute lifetime or idle timeout.
    Expired,
    /// A token presented after its successor was presented, outside the grace window: the
    /// family is revoked.
    ReuseDetected {
        /// The revoked family.
        family_id: String,
        /// Its owner.
        user_id: i64,
    },
}

/// One throttle counter (see `src/throttle.rs`): failures of one key in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    /// The throttle key (`p:<ip>|<account>`, `a:<account>`, `i:<ip>`).
    pub key: String,
    /// Start of the counter's window: its first failure (ms).
    pub window_start: i64,
    /// Failures since `window_start`.
    pub failures: i64,
    /// The latest failure (ms).
    pub last_failure_at: i64,
}

fn split_roles(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Rotation writes on SQLite: several statements in one call (`$n` are global to the call);
/// `changes()` chains them to the compare-and-set so nothing is written if it matched nothing.
const ROTATE_WRITE_SQLITE: &str = "UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
     WHERE token_hash = $3 AND used_at IS NULL; \
     INSERT INTO refresh_tokens (token_hash, family_id, created_at) SELECT $2, $4, $1 WHERE changes() = 1; \
     UPDATE refresh_families SET last_used_at = $1 WHERE id = $4 AND changes() = 1";

/// The common rotation on SQLite in one round trip to the connection's thread: an unused token
/// of a live family (not revoked, not past its end, not idle, presented the way it was issued)
/// is marked used, its successor stored and the family touched, all in one `BEGIN IMMEDIATE`
/// transaction, and the family's row comes back. Anything else changes nothing and returns no
/// row; then the general path (read, decide, write) runs and gives the precise outcome. Each
/// write runs only when the one before it changed exactly one row (`changes()`), so the row
/// comes back only when all three did. Why one string: sqlx runs every statement of a SQLite
/// connection on that connection's own thread and each call is a round trip to it (two context
/// switches); a rotation was seven of them (server/README.md, "Issue 16").
const ROTATE_FAST_SQLITE: &str = "BEGIN IMMEDIATE; \
     UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
     WHERE token_hash = $3 AND used_at IS NULL AND family_id = ( \
       SELECT f.id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
       WHERE t.token_hash = $3 AND f.revoked_at IS NULL AND f.transport = $5 \
         AND $1 < f.expires_at AND $1 - f.last_used_at < $4); \
     INSERT INTO refresh_tokens (token_hash, family_id, created_at) \
       SELECT $2, family_id, $1 FROM refresh_tokens WHERE token_hash = $3 AND changes() = 1; \
     UPDATE refresh_families SET last_used_at = $1 \
       WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2) AND changes() = 1; \
     SELECT f.id, f.user_id, f.expires_at, u.roles FROM refresh_families f JOIN users u ON u.id = f.user_id \
       WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2) AND changes() = 1; \
     COMMIT";

/// Rotation writes on PostgreSQL: one statement with data-modifying CTEs; returns rows written.
const ROTATE_WRITE_POSTGRES: &str = "WITH u AS (UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
     WHERE token_hash = $3 AND used_at IS NULL RETURNING family_id), \
     i AS (INSERT INTO refresh_tokens (token_hash, family_id, created_at) SELECT $2, family_id, $1 FROM u RETURNING 1), \
     f AS (UPDATE refresh_families SET last_used_at = $1 WHERE id = $4 AND EXISTS (SELECT 1 FROM u) RETURNING 1) \
     SELECT (SELECT COUNT(*) FROM u) + (SELECT COUNT(*) FROM i) + (SELECT COUNT(*) FROM f)";

/// Counts one failed sign-in for each of three keys in one statement, atomically (every instance
/// on the database shares the counters): a key without a row, or whose window ended (`window_start
/// <= $5`), starts a new window at this failure; otherwise its count goes up. Returns the new rows.
const RECORD_LOGIN_FAILURE: &str = "INSERT INTO login_failures (key, window_start, failures, last_failure_at) \
     VALUES ($1, $4, 1, $4), ($2, $4, 1, $4), ($3, $4, 1, $4) \
     ON CONFLICT (key) DO UPDATE SET \
       failures = CASE WHEN login_failures.window_start <= $5 THEN 1 ELSE login_failures.failures + 1 END, \
       window_start = CASE WHEN login_failures.window_start <= $5 THEN excluded.window_start \
                      ELSE login_failures.window_start END, \
       last_failure_at = excluded.last_failure_at \
     RETURNING key, window_start, failures, last_failure_at";

/// Lock statement: a no-op write on the family row that owns a token.
const LOCK_FAMILY_OF_TOKEN: &str = "UPDATE refresh_families SET last_used_at = last_used_at \
     WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)";

/// The columns `user_from_row` reads, selected by a WHERE clause (one list for every lookup).
macro_rules! select_user {
    ($where:literal) => {
        concat!(
            "SELECT id, username, email, password_hash, roles, password_changed_at FROM users WHERE ",
            $where
        )
    };
}

impl Db {
    /// Connects (creating a SQLite file and its folder if missing), runs the migrations and
    /// starts the access-token cache's invalidation task.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        Self::connect_with_cache(url, max_connections, true).await
    }

    /// [`Db::connect`], with the access-token cache on or off (off: every check reads the
    /// database, as before the cache; `--no-access-cache`).
    pub async fn connect_with_cache(
        url: &str,
        max_connections: u32,
        access_cache: bool,
    ) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                "database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            if !path.is_empty() && path != ":memory:" {
                if let Some(dir) = std::path::Path::new(&path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
                }
            }
            if !url.contains("mode=") {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str("mode=rwc");
            }
        }
        let opts = AnyConnectOptions::from_str(&url)?;
        let net = Arc::new(net::Net::default());
        let release_net = net.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            // SQLite: no ping before lending a connection. It is a file opened by a thread of
            // this process, not a socket that can go away while idle; the release check
            // (`after_release` below) already asked it and closes it on any error, and the
            // ping was one more round trip to that thread in every unit of work. PostgreSQL
            // keeps sqlx's ping: a server restart leaves idle connections dead, and the ping
            // swaps them before a request sees it.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _meta| {
                let net = release_net.clone();
                Box::pin(async move { net.keep(conn, backend).await })
            })
            .connect_with(opts)
            .await?;
        let writer = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let db = Self {
            pool,
            backend,
            writer,
            net,
            inline: false,
            cache: Arc::new(cache::Cache::new(access_cache)),
        };
        db.migrate().await?;
        cache::start(
            &db.cache,
            db.pool.clone(),
            url,
            backend == Backend::Postgres,
        );
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let res = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await,
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await
            }
        };
        res.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => e,
            other => sqlx::Error::Migrate(Box::new(other)),
        })
    }

    /// Runs one unit of database work to its end in a task of its own, so that the caller may
    /// be dropped at any await (client gone, request timeout) without cutting the work: it
    /// commits or rolls back and releases its connection whatever happens to the request.
    /// A panic inside the work is passed on to the caller.
    async fn unit<T, E, Fut>(&self, work: impl FnOnce(Db) -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let work = work(self.clone());
        if self.inline {
            return work.await;
        }
        match tokio::spawn(work).await {
            Ok(res) => res,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(sqlx::Error::Protocol(format!("database task ended early: {e}")).into()),
        }
    }

    /// The same database with every unit of work run in the caller's own future, so a dropped
    /// caller does cut it: only for tests that show the pool's safety net alone holds.
    #[doc(hidden)]
    pub fn inline_for_tests(&self) -> Db {
        Db {
            inline: true,
            ..self.clone()
        }
    }

    /// Connections the safety net closed because they came back inside a transaction.
    pub fn discarded_connections(&self) -> u64 {
        self.net.open_transaction()
    }

    /// Connections closed because the safety net's own check failed (a broken connection).
    pub fn failed_release_checks(&self) -> u64 {
        self.net.check_failed()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (for tests and tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool: every later query fails (used to test the 503 path).
    pub async fn close(&self) {
        // Nothing is answered from memory once the database is gone for this instance.
        self.cache.lost();
        self.pool.close().await;
    }

    async fn write_guard(&self) -> WriteGuard {
        match &self.writer {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        }
    }

    async fn begin(
        &self,
    ) -> Result<(WriteGuard, sqlx::Transaction<'static, sqlx::Any>), sqlx::Error> {
        let guard = self.write_guard().await;
        let tx = match self.backend {
            // Take the write lock up front: a deferred transaction that reads first can fail with
            // SQLITE_BUSY_SNAPSHOT instead of waiting.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }?;
        Ok((guard, tx))
    }

    /// Serialises operations on one family. PostgreSQL: the family row lock. SQLite: nothing to
    /// do, `BEGIN IMMEDIATE` (and the in-process writer mutex) already hold the write lock.
    async fn lock_family_of_token(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        token_hash: &str,
    ) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query(LOCK_FAMILY_OF_TOKEN)
                .bind(token_hash)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    // --- The public units of work: each a thin wrapper that runs its body in `unit`. -------

    /// Creates a user; username and email must be free.
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        password_hash: &str,
        roles: &[String],
        now: i64,
    ) -> Result<i64, CreateUserError> {
        let (u, e, h, r) = (
            username.to_owned(),
            email.to_owned(),
            password_hash.to_owned(),
            roles.to_vec(),
        );
        self.unit(move |db| async move { db.create_user_inline(&u, &e, &h, &r, now).await })
            .await
    }

    /// Finds a user by exact username.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let u = username.to_owned();
        self.unit(move |db| async move { db.user_by_username_inline(&u).await })
            .await
    }

    /// What checking an access token needs: the user's roles and password-changed time, and
    /// whether the session (family) the token was issued under is still live — not revoked,
    /// not past its end. From the instance's cache when its view is fresh (see [`cache`]),
    /// else in one query. None: no such user.
    pub async fn user_and_session(
        &self,
        user_id: i64,
        family_id: &str,
        now: i64,
    ) -> Result<Option<TokenSubject>, sqlx::Error> {
        if let Some(hit) = self.cache.get(user_id, family_id, now) {
            return Ok(Some(hit));
        }
        let id = family_id.to_owned();
        self.unit(move |db| async move {
            let epoch = db.cache.epoch();
            let found = db.user_and_session_inline(user_id, &id, now).await?;
            if let Some((subject, Some(end))) = &found {
                db.cache.put(epoch, user_id, &id, *end, subject);
            }
            Ok(found.map(|(subject, _)| subject))
        })
        .await
    }

    /// Access-token checks answered from the cache, read because not cached, and read because
    /// the cache's view was not fresh (listener lost, database unreachable).
    pub fn access_cache_counts(&self) -> (u64, u64, u64) {
        self.cache.counts()
    }

    /// Whether this instance's cache is in step with the database right now.
    pub fn access_cache_fresh(&self) -> bool {
        self.cache.fresh()
    }

    /// Sets a new password hash and revokes every refresh-token family of the user.
    pub async fn change_password(
        &self,
        user_id: i64,
        new_hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let h = new_hash.to_owned();
        self.unit(move |db| async move { db.change_password_inline(user_id, &h, now).await })
            .await
    }

    /// Sets a new password hash and revokes every refresh-token family of the user except
    /// `keep` (the session that changed the password), in one transaction. Unlike
    /// [`Db::change_password`] it leaves `password_changed_at` alone: that cut-off would also
    /// refuse the kept session's access tokens, and the other families' tokens are refused
    /// anyway by the live-family check, since every accepted access token names a live family.
    pub async fn change_password_keeping(
        &self,
        user_id: i64,
        new_hash: &str,
        keep: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let (h, keep) = (new_hash.to_owned(), keep.to_owned());
        self.unit(move |db| async move {
            db.change_password_keeping_inline(user_id, &h, &keep, now)
                .await
        })
        .await
    }

    /// Revokes every live family of the user (reason `signout`), or every one but `except`.
    /// Returns how many were revoked.
    pub async fn revoke_user_families(
        &self,
        user_id: i64,
        except: Option<&str>,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let except = except.map(str::to_owned);
        self.unit(move |db| async move {
            db.revoke_user_families_inline(user_id, except.as_deref(), now)
                .await
        })
        .await
    }

    /// The user with this id.
    pub async fn user_by_id(&self, user_id: i64) -> Result<Option<UserRow>, sqlx::Error> {
        self.unit(move |db| async move { db.user_by_id_inline(user_id).await })
            .await
    }

    /// Deletes a user with all their families and tokens.
    pub async fn delete_user(&self, user_id: i64) -> Result<bool, sqlx::Error> {
        self.unit(move |db| async move { db.delete_user_inline(user_id).await })
            .await
    }

    /// Starts a family with its first token (one transaction).
    pub async fn create_family(&self, f: NewFamily) -> Result<(), sqlx::Error> {
        self.unit(move |db| async move { db.create_family_inline(&f).await })
            .await
    }

    /// Presents a refresh token: rotates it, answers the grace successor, or detects reuse.
    pub async fn rotate(&self, r: Rotation) -> Result<RotateOutcome, sqlx::Error> {
        self.unit(move |db| async move { db.rotate_inline(&r).await })
            .await
    }

    /// Revokes the family that a (current or already rotated) token belongs to.
    /// Returns the family id when one was found (revoked now or before).
    pub async fn revoke_family_of_token(
        &self,
        token_hash: &str,
        transport: Transport,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let h = token_hash.to_owned();
        self.unit(
            move |db| async move { db.revoke_family_of_token_inline(&h, transport, now).await },
        )
        .await
    }

    /// Active (not revoked, not expired, not idle) families of a user, newest first, as the
    /// sessions list shows them (times in seconds; `current` left false for the caller to set).
    pub async fn list_families(
        &self,
        user_id: i64,
        now: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionInfo>, sqlx::Error> {
        self.unit(move |db| async move { db.list_families_inline(user_id, now, idle_ms).await })
            .await
    }

    /// Revokes one of the user's own families. False when it is not theirs or unknown.
    pub async fn revoke_family(
        &self,
        user_id: i64,
        family_id: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let id = family_id.to_owned();
        self.unit(move |db| async move { db.revoke_family_inline(user_id, &id, now).await })
            .await
    }

    /// Whether a family has been revoked (None: no such family).
    pub async fn family_revoked(&self, family_id: &str) -> Result<Option<bool>, sqlx::Error> {
        let id = family_id.to_owned();
        self.unit(move |db| async move { db.family_revoked_inline(&id).await })
            .await
    }

    /// Number of unused tokens in a family (exactly one while it is alive).
    pub async fn active_tokens_in_family(&self, family_id: &str) -> Result<i64, sqlx::Error> {
        let id = family_id.to_owned();
        self.unit(move |db| async move { db.active_tokens_in_family_inline(&id).await })
            .await
    }

    /// Families (not revoked) whose number of unused tokens is not exactly one: must be empty.
    pub async fn families_without_exactly_one_active_token(&self) -> Result<i64, sqlx::Error> {
        self.unit(|db| async move { db.families_without_exactly_one_active_token_inline().await })
            .await
    }

    /// Deletes families that ended (expired or revoked) more than `keep_ms` ago, with their tokens.
    pub async fn purge_ended_families(&self, now: i64, keep_ms: i64) -> Result<u64, sqlx::Error> {
        self.unit(move |db| async move { db.purge_ended_families_inline(now, keep_ms).await })
            .await
    }

    /// The throttle counters of these keys whose window is still open (`window_start > cutoff`).
    pub async fn login_failures(
        &self,
        keys: [String; 3],
        cutoff: i64,
    ) -> Result<Vec<FailureCount>, sqlx::Error> {
        self.unit(move |db| async move { db.login_failures_inline(&keys, cutoff).await })
            .await
    }

    /// Counts a failed sign-in for each of the three keys (one upsert that returns the new
    /// counters); a window that ended at or before `cutoff` starts again at `now`.
    pub async fn record_login_failure(
        &self,
        keys: [String; 3],
        now: i64,
        cutoff: i64,
    ) -> Result<Vec<FailureCount>, sqlx::Error> {
        self.unit(move |db| async move { db.record_login_failure_inline(&keys, now, cutoff).await })
            .await
    }

    /// Forgets the throttle counters of these keys (a successful sign-in).
    pub async fn clear_login_failures(&self, keys: [String; 2]) -> Result<(), sqlx::Error> {
        self.unit(move |db| async move { db.clear_login_failures_inline(&keys).await })
            .await
    }

    /// Deletes throttle counters whose window ended at or before `cutoff` (they count nothing).
    pub async fn purge_login_failures(&self, cutoff: i64) -> Result<u64, sqlx::Error> {
        self.unit(move |db| async move { db.purge_login_failures_inline(cutoff).await })
            .await
    }

    // --- The bodies of the units of work (run only through `unit`). --------------------------

    /// Creates a user; username and email must be free.
    async fn create_user_inline(
        &self,
        username: &str,
        email: &str,
        password_hash: &str,
        roles: &[String],
        now: i64,
    ) -> Result<i64, CreateUserError> {
        let taken = |col: &'static str, v: &str| {
            let q = format!("SELECT 1 FROM users WHERE lower({col}) = lower($1)");
            let v = v.to_owned();
            let pool = self.pool.clone();
            async move {
                sqlx::query(&q)
                    .bind(v)
                    .fetch_optional(&pool)
                    .await
                    .map(|r| r.is_some())
            }
        };
        if taken("username", username).await? {
            return Err(CreateUserError::UsernameTaken);
        }
        if taken("email", email).await? {
            return Err(CreateUserError::EmailTaken);
        }
        let guard = self.write_guard().await;
        let res = sqlx::query(
            "INSERT INTO users (username, email, password_hash, roles, password_changed_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(username)
        .bind(email)
        .bind(password_hash)
        .bind(roles.join(","))
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        drop(guard);
        match res {
            Ok(row) => Ok(row.try_get::<i64, _>(0)?),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // Lost a race with a concurrent sign-up; tell which field when we can.
                if taken("email", email).await? && !taken("username", username).await? {
                    Err(CreateUserError::EmailTaken)
                } else {
                    Err(CreateUserError::UsernameTaken)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn user_from_row(row: &sqlx::any::AnyRow) -> Result<UserRow, sqlx::Error> {
        Ok(UserRow {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            roles: split_roles(&row.try_get::<String, _>("roles")?),
            password_changed_at: row.try_get("password_changed_at")?,
        })
    }

    /// Finds a user by exact username.
    async fn user_by_username_inline(
        &self,
        username: &str,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        let row = sqlx::query(select_user!("username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    /// The subject, and the end of the family when it is live.
    async fn user_and_session_inline(
        &self,
        user_id: i64,
        family_id: &str,
        now: i64,
    ) -> Result<Option<(TokenSubject, Option<i64>)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT roles, password_changed_at, \
                    (SELECT MAX(f.expires_at) FROM refresh_families f WHERE f.id = $2 AND f.user_id = users.id \
                       AND f.revoked_at IS NULL AND f.expires_at > $3) AS live_until \
             FROM users WHERE id = $1",
        )
        .bind(user_id)
        .bind(family_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let end: Option<i64> = r.try_get("live_until")?;
            Ok((
                TokenSubject {
                    roles: split_roles(&r.try_get::<String, _>("roles")?),
                    password_changed_at: r.try_get("password_changed_at")?,
                    live: end.is_some(),
                },
                end,
            ))
        })
        .transpose()
    }

    /// Announces, inside the writing transaction `tx`, that `user_id`'s sessions or fields
    /// changed: every instance drops the user from its access-token cache once `tx` commits
    /// (PostgreSQL: NOTIFY, delivered on commit only; SQLite: a `cache_events` row).
    async fn announce(
        backend: Backend,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user_id: i64,
    ) -> Result<(), sqlx::Error> {
        match backend {
            // NOTIFY takes no bind parameters; the payload is an integer.
            Backend::Postgres => {
                let sql = format!("NOTIFY {}, '{user_id}'", cache::CHANNEL);
                (&mut **tx).execute(sql.as_str()).await?;
            }
            Backend::Sqlite => {
                sqlx::query("INSERT INTO cache_events (user_id) VALUES ($1)")
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Commits a transaction that announced `user_id`, then drops the user here at once (the
    /// other instances follow through the announcement).
    async fn commit_announced(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        user_id: i64,
    ) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        self.cache.invalidate(user_id);
        Ok(())
    }

    /// Sets a new password hash and revokes every refresh-token family of the user.
    async fn change_password_inline(
        &self,
        user_id: i64,
        new_hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        let n = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
        )
        .bind(new_hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Self::revoke_families(&mut tx, user_id, None, "password_changed", now).await?;
        Self::announce(self.backend, &mut tx, user_id).await?;
        self.commit_announced(tx, user_id).await?;
        Ok(n == 1)
    }

    /// Revokes the user's live families for `reason`, all or all but `except`, inside `tx`.
    async fn revoke_families(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        user_id: i64,
        except: Option<&str>,
        reason: &str,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        const LIVE: &str = "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 \
                            WHERE user_id = $3 AND revoked_at IS NULL";
        let sql = match except {
            None => LIVE.to_owned(),
            Some(_) => format!("{LIVE} AND id <> $4"),
        };
        let q = sqlx::query(&sql);
        let q = q.bind(now).bind(reason).bind(user_id);
        let q = match except {
            Some(keep) => q.bind(keep),
            None => q,
        };
        Ok(q.execute(&mut **tx).await?.rows_affected())
    }

    async fn change_password_keeping_inline(
        &self,
        user_id: i64,
        new_hash: &str,
        keep: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(new_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::revoke_families(&mut tx, user_id, Some(keep), "password_changed", now).await?;
        Self::announce(self.backend, &mut tx, user_id).await?;
        self.commit_announced(tx, user_id).await?;
        Ok(n == 1)
    }

    async fn revoke_user_families_inline(
        &self,
        user_id: i64,
        except: Option<&str>,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        let n = Self::revoke_families(&mut tx, user_id, except, "signout", now).await?;
        Self::announce(self.backend, &mut tx, user_id).await?;
        self.commit_announced(tx, user_id).await?;
        Ok(n)
    }

    async fn user_by_id_inline(&self, user_id: i64) -> Result<Option<UserRow>, sqlx::Error> {
        let row = sqlx::query(select_user!("id = $1"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    /// Deletes a user with all their families and tokens.
    async fn delete_user_inline(&self, user_id: i64) -> Result<bool, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = $1)",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM refresh_families WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::announce(self.backend, &mut tx, user_id).await?;
        self.commit_announced(tx, user_id).await?;
        Ok(n == 1)
    }

    /// Starts a family with its first token (one transaction).
    async fn create_family_inline(&self, f: &NewFamily) -> Result<(), sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, transport, device, created_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(&f.id)
        .bind(f.user_id)
        .bind(f.transport.as_str())
        .bind(&f.device)
        .bind(f.now)
        .bind(f.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&f.token_hash)
        .bind(&f.id)
        .bind(f.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Presents a refresh token: rotates it, answers the grace successor, or detects reuse.
    async fn rotate_inline(&self, r: &Rotation) -> Result<RotateOutcome, sqlx::Error> {
        if self.backend == Backend::Sqlite {
            if let Some(rotated) = self.rotate_fast_sqlite(r).await? {
                return Ok(RotateOutcome::Rotated(rotated));
            }
        }
        let (_w, mut tx) = self.begin().await?;
        self.lock_family_of_token(&mut tx, &r.token_hash).await?;
        let row = sqlx::query(
            "SELECT t.family_id, t.used_at, t.successor_hash, f.user_id, f.transport, f.last_used_at, \
                    f.expires_at, f.revoked_at, f.revoked_reason, u.roles \
             FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id \
             JOIN users u ON u.id = f.user_id \
             WHERE t.token_hash = $1",
        )
        .bind(&r.token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(RotateOutcome::Invalid);
        };
        let family_id: String = row.try_get("family_id")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        let successor_hash: Option<String> = row.try_get("successor_hash")?;
        let user_id: i64 = row.try_get("user_id")?;
        let transport: String = row.try_get("transport")?;
        let last_used_at: i64 = row.try_get("last_used_at")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        let revoked_reason: Option<String> = row.try_get("revoked_reason")?;
        let roles = split_roles(&row.try_get::<String, _>("roles")?);

        if transport != r.transport.as_str() {
            tx.rollback().await?;
            return Ok(RotateOutcome::Invalid);
        }
        if revoked_at.is_some() {
            tx.rollback().await?;
            return Ok(RotateOutcome::Ended {
                reason: revoked_reason.unwrap_or_default(),
            });
        }
        if r.now >= expires_at {
            tx.rollback().await?;
            return Ok(RotateOutcome::Expired);
        }
        let rotated = Rotated {
            family_id: family_id.clone(),
            user_id,
            roles,
            expires_at,
        };
        match used_at {
            None => {
                if r.now.saturating_sub(last_used_at) >= r.idle_ms {
                    tx.rollback().await?;
                    return Ok(RotateOutcome::Expired);
                }
                // Compare-and-set: only an unused token is rotated (the lock makes this certain,
                // the condition keeps it true even without it). Marking it used, storing the
                // successor and touching the family is one round trip; 3 rows or nothing.
                let sql = match self.backend {
                    Backend::Sqlite => ROTATE_WRITE_SQLITE,
                    Backend::Postgres => ROTATE_WRITE_POSTGRES,
                };
                let q = sqlx::query(sql)
                    .bind(r.now)
                    .bind(&r.successor_hash)
                    .bind(&r.token_hash)
                    .bind(&family_id);
                let written = match self.backend {
                    Backend::Sqlite => q.execute(&mut *tx).await?.rows_affected() as i64,
                    Backend::Postgres => q.fetch_one(&mut *tx).await?.try_get::<i64, _>(0)?,
                };
                if written != 3 {
                    tracing::error!(
                        written,
                        "rotation write did not touch exactly 3 rows; rolled back"
                    );
                    tx.rollback().await?;
                    return Ok(RotateOutcome::Invalid);
                }
                tx.commit().await?;
                Ok(RotateOutcome::Rotated(rotated))
            }
            Some(used) => {
                // Already rotated. What its successor has seen decides (see server/README.md,
                // "Rotation rule"): never presented -> the same successor again; presented
                // moments ago -> the caller walks on to the active token; else reuse.
                let successor_used: Option<Option<i64>> = match successor_hash.as_deref() {
                    Some(h) if h == r.successor_hash.as_str() => sqlx::query(
                        "SELECT used_at FROM refresh_tokens WHERE token_hash = $1 AND family_id = $2",
                    )
                    .bind(h)
                    .bind(&family_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| row.try_get::<Option<i64>, _>(0))
                    .transpose()?,
                    _ => None,
                };
                match successor_used {
                    Some(None) => {
                        if r.now.saturating_sub(last_used_at) >= r.idle_ms {
                            tx.rollback().await?;
                            return Ok(RotateOutcome::Expired);
                        }
                        // A presentation is activity: it keeps the family from going idle.
                        sqlx::query("UPDATE refresh_families SET last_used_at = $1 WHERE id = $2")
                            .bind(r.now)
                            .bind(&family_id)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        return Ok(RotateOutcome::Repeated(rotated));
                    }
                    Some(Some(_)) if r.now.saturating_sub(used) <= r.grace_ms => {
                        tx.rollback().await?;
                        return Ok(RotateOutcome::Superseded);
                    }
                    _ => {}
                }
                sqlx::query(
                    "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'reuse_detected' \
                     WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(r.now)
                .bind(&family_id)
                .execute(&mut *tx)
                .await?;
                Self::announce(self.backend, &mut tx, user_id).await?;
                self.commit_announced(tx, user_id).await?;
                Ok(RotateOutcome::ReuseDetected { family_id, user_id })
            }
        }
    }

    /// [`ROTATE_FAST_SQLITE`]: Some when it rotated, None when the general path must decide.
    async fn rotate_fast_sqlite(&self, r: &Rotation) -> Result<Option<Rotated>, sqlx::Error> {
        let _w = self.write_guard().await;
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(ROTATE_FAST_SQLITE)
            .bind(r.now)
            .bind(&r.successor_hash)
            .bind(&r.token_hash)
            .bind(r.idle_ms)
            .bind(r.transport.as_str())
            .fetch_all(&mut *conn)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // A statement failed after the BEGIN: end the transaction here (the pool's
                // release check would otherwise close the connection). Fails harmlessly when
                // the BEGIN itself failed and no transaction is open.
                let _ = conn.execute("ROLLBACK").await;
                return Err(e);
            }
        };
        match rows.as_slice() {
            [] => Ok(None),
            [row] => Ok(Some(Rotated {
                family_id: row.try_get(0)?,
                user_id: row.try_get(1)?,
                expires_at: row.try_get(2)?,
                roles: split_roles(&row.try_get::<String, _>(3)?),
            })),
            more => Err(sqlx::Error::Protocol(format!(
                "the rotation returned {} rows, not one",
                more.len()
            ))),
        }
    }

    /// Revokes the family that a (current or already rotated) token belongs to.
    /// Returns the family id when one was found (revoked now or before).
    async fn revoke_family_of_token_inline(
        &self,
        token_hash: &str,
        transport: Transport,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        self.lock_family_of_token(&mut tx, token_hash).await?;
        let row = sqlx::query(
            "SELECT f.id, f.transport, f.user_id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let fam_transport: String = row.try_get("transport")?;
        let user_id: i64 = row.try_get("user_id")?;
        if fam_transport != transport.as_str() {
            tx.rollback().await?;
            return Ok(None);
        }
        let n = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'signout' WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Revoked before, and announced then.
            tx.commit().await?;
            return Ok(Some(id));
        }
        Self::announce(self.backend, &mut tx, user_id).await?;
        self.commit_announced(tx, user_id).await?;
        Ok(Some(id))
    }

    /// Active (not revoked, not expired, not idle) families of a user, newest first.
    async fn list_families_inline(
        &self,
        user_id: i64,
        now: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionInfo>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, device, transport, created_at, last_used_at, expires_at FROM refresh_families \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_used_at > $3 \
             ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now)
        .bind(now.saturating_sub(idle_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let secs = |column: &str| r.try_get::<i64, _>(column).map(|ms| ms / 1000);
                Ok(SessionInfo {
                    id: r.try_get("id")?,
                    device: r.try_get("device")?,
                    transport: r.try_get("transport")?,
                    created_at: secs("created_at")?,
                    last_used_at: secs("last_used_at")?,
                    expires_at: secs("expires_at")?,
                    current: false,
                })
            })
            .collect()
    }

    /// Revokes one of the user's own families. False when it is not theirs or unknown.
    async fn revoke_family_inline(
        &self,
        user_id: i64,
        family_id: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        // A transaction, so that the announcement commits with the revocation.
        let (_w, mut tx) = self.begin().await?;
        let n = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'ended_by_user' \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        Self::announce(self.backend, &mut tx, user_id).await?;
        self.commit_announced(tx, user_id).await?;
        Ok(true)
    }

    /// Whether a family has been revoked (None: no such family).
    async fn family_revoked_inline(&self, family_id: &str) -> Result<Option<bool>, sqlx::Error> {
        let row = sqlx::query("SELECT revoked_at FROM refresh_families WHERE id = $1")
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<Option<i64>, _>(0).map(|v| v.is_some()))
            .transpose()
    }

    /// Number of unused tokens in a family (exactly one while it is alive).
    async fn active_tokens_in_family_inline(&self, family_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1 AND used_at IS NULL")
            .bind(family_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)
    }

    /// Families (not revoked) whose number of unused tokens is not exactly one: must be empty.
    async fn families_without_exactly_one_active_token_inline(&self) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "SELECT COUNT(*) FROM refresh_families f WHERE f.revoked_at IS NULL AND \
             (SELECT COUNT(*) FROM refresh_tokens t WHERE t.family_id = f.id AND t.used_at IS NULL) <> 1",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)
    }

    /// Deletes families that ended (expired or revoked) more than `keep_ms` ago, with their tokens.
    async fn purge_ended_families_inline(
        &self,
        now: i64,
        keep_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        let cutoff = now.saturating_sub(keep_ms);
        let (_w, mut tx) = self.begin().await?;
        let cond = "(expires_at < $1 OR revoked_at < $1)";
        sqlx::query(&format!(
            "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE {cond})"
        ))
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(&format!("DELETE FROM refresh_families WHERE {cond}"))
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
    fn failure_from_row(row: &sqlx::any::AnyRow) -> Result<FailureCount, sqlx::Error> {
        Ok(FailureCount {
            key: row.try_get("key")?,
            window_start: row.try_get("window_start")?,
            failures: row.try_get("failures")?,
            last_failure_at: row.try_get("last_failure_at")?,
        })
    }

    async fn login_failures_inline(
        &self,
        keys: &[String; 3],
        cutoff: i64,
    ) -> Result<Vec<FailureCount>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT key, window_start, failures, last_failure_at FROM login_failures \
             WHERE key IN ($1, $2, $3) AND window_start > $4",
        )
        .bind(&keys[0])
        .bind(&keys[1])
        .bind(&keys[2])
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::failure_from_row).collect()
    }

    async fn record_login_failure_inline(
        &self,
        keys: &[String; 3],
        now: i64,
        cutoff: i64,
    ) -> Result<Vec<FailureCount>, sqlx::Error> {
        let _w = self.write_guard().await;
        let rows = sqlx::query(RECORD_LOGIN_FAILURE)
            .bind(&keys[0])
            .bind(&keys[1])
            .bind(&keys[2])
            .bind(now)
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::failure_from_row).collect()
    }

    async fn clear_login_failures_inline(&self, keys: &[String; 2]) -> Result<(), sqlx::Error> {
        let _w = self.write_guard().await;
        sqlx::query("DELETE FROM login_failures WHERE key IN ($1, $2)")
            .bind(&keys[0])
            .bind(&keys[1])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_login_failures_inline(&self, cutoff: i64) -> Result<u64, sqlx::Error> {
        let _w = self.write_guard().await;
        Ok(
            sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
