//! Storage: users, refresh-token families and refresh tokens, on SQLite or PostgreSQL through
//! sqlx's `Any` driver (one code path; `$n` placeholders work on both). Times are Unix ms.
//!
//! Every operation on a family starts with a write to the family row (`UPDATE ... SET
//! last_used_at = last_used_at`): on PostgreSQL that takes the row lock, on SQLite the database
//! write lock, so rotation, sign-out and revocation of one family are serialised and each
//! decision is taken on committed data (compare-and-set under a lock, in one transaction).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

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
pub struct NewFamily<'a> {
    /// Family id (opaque, random).
    pub id: &'a str,
    /// Owner.
    pub user_id: i64,
    /// Transport chosen at sign-in, fixed for the family's life.
    pub transport: Transport,
    /// Short client description.
    pub device: &'a str,
    /// Now (ms).
    pub now: i64,
    /// End of the absolute lifetime (ms).
    pub expires_at: i64,
    /// Hash of the first refresh token.
    pub token_hash: &'a str,
}

/// Input of a rotation.
#[derive(Debug, Clone)]
pub struct Rotation<'a> {
    /// Hash of the presented token.
    pub token_hash: &'a str,
    /// Hash of its (deterministic) successor.
    pub successor_hash: &'a str,
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
    /// Already rotated moments ago (within grace, successor unused): the same successor again.
    Grace(Rotated),
    /// No such token, a revoked family, or the wrong transport. Nothing changed.
    Invalid,
    /// The family is past its absolute lifetime or idle timeout.
    Expired,
    /// A used token presented after grace or after its successor was used: family revoked.
    ReuseDetected {
        /// The revoked family.
        family_id: String,
        /// Its owner.
        user_id: i64,
    },
}

/// One active family as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRow {
    /// Family id.
    pub id: String,
    /// Client description.
    pub device: String,
    /// `body` / `cookie`.
    pub transport: String,
    /// Created (ms).
    pub created_at: i64,
    /// Last refresh (ms).
    pub last_used_at: i64,
    /// End of absolute lifetime (ms).
    pub expires_at: i64,
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

/// Rotation writes on PostgreSQL: one statement with data-modifying CTEs; returns rows written.
const ROTATE_WRITE_POSTGRES: &str = "WITH u AS (UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 \
     WHERE token_hash = $3 AND used_at IS NULL RETURNING family_id), \
     i AS (INSERT INTO refresh_tokens (token_hash, family_id, created_at) SELECT $2, family_id, $1 FROM u RETURNING 1), \
     f AS (UPDATE refresh_families SET last_used_at = $1 WHERE id = $4 AND EXISTS (SELECT 1 FROM u) RETURNING 1) \
     SELECT (SELECT COUNT(*) FROM u) + (SELECT COUNT(*) FROM i) + (SELECT COUNT(*) FROM f)";

/// Lock statement: a no-op write on the family row that owns a token.
const LOCK_FAMILY_OF_TOKEN: &str = "UPDATE refresh_families SET last_used_at = last_used_at \
     WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)";

impl Db {
    /// Connects (creating a SQLite file and its folder if missing) and runs the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
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
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
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
            .connect_with(opts)
            .await?;
        let writer = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let db = Self {
            pool,
            backend,
            writer,
        };
        db.migrate().await?;
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

    /// Creates a user; username and email must be free.
    pub async fn create_user(
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
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, username, email, password_hash, roles, password_changed_at FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    /// Finds a user by id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, username, email, password_hash, roles, password_changed_at FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    /// Sets a new password hash and revokes every refresh-token family of the user.
    pub async fn change_password(
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
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'password_changed' \
             WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Deletes a user with all their families and tokens.
    pub async fn delete_user(&self, user_id: i64) -> Result<bool, sqlx::Error> {
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
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Starts a family with its first token (one transaction).
    pub async fn create_family(&self, f: &NewFamily<'_>) -> Result<(), sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, transport, device, created_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(f.id)
        .bind(f.user_id)
        .bind(f.transport.as_str())
        .bind(f.device)
        .bind(f.now)
        .bind(f.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(f.token_hash)
        .bind(f.id)
        .bind(f.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Presents a refresh token: rotates it, answers the grace successor, or detects reuse.
    pub async fn rotate(&self, r: &Rotation<'_>) -> Result<RotateOutcome, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        self.lock_family_of_token(&mut tx, r.token_hash).await?;
        let row = sqlx::query(
            "SELECT t.family_id, t.used_at, t.successor_hash, f.user_id, f.transport, f.last_used_at, \
                    f.expires_at, f.revoked_at, u.roles \
             FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id \
             JOIN users u ON u.id = f.user_id \
             WHERE t.token_hash = $1",
        )
        .bind(r.token_hash)
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
        let roles = split_roles(&row.try_get::<String, _>("roles")?);

        if revoked_at.is_some() || transport != r.transport.as_str() {
            tx.rollback().await?;
            return Ok(RotateOutcome::Invalid);
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
                    .bind(r.successor_hash)
                    .bind(r.token_hash)
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
                let successor_unused = match successor_hash.as_deref() {
                    Some(h) if h == r.successor_hash => sqlx::query(
                        "SELECT 1 FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NULL",
                    )
                    .bind(h)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                    _ => false,
                };
                if successor_unused && r.now.saturating_sub(used) <= r.grace_ms {
                    tx.commit().await?;
                    return Ok(RotateOutcome::Grace(rotated));
                }
                sqlx::query(
                    "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'reuse_detected' \
                     WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(r.now)
                .bind(&family_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(RotateOutcome::ReuseDetected { family_id, user_id })
            }
        }
    }

    /// Revokes the family that a (current or already rotated) token belongs to.
    /// Returns the family id when one was found (revoked now or before).
    pub async fn revoke_family_of_token(
        &self,
        token_hash: &str,
        transport: Transport,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let (_w, mut tx) = self.begin().await?;
        self.lock_family_of_token(&mut tx, token_hash).await?;
        let row = sqlx::query(
            "SELECT f.id, f.transport FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
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
        if fam_transport != transport.as_str() {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'signout' WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Active (not revoked, not expired, not idle) families of a user, newest first.
    pub async fn list_families(
        &self,
        user_id: i64,
        now: i64,
        idle_ms: i64,
    ) -> Result<Vec<FamilyRow>, sqlx::Error> {
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
                Ok(FamilyRow {
                    id: r.try_get("id")?,
                    device: r.try_get("device")?,
                    transport: r.try_get("transport")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of the user's own families. False when it is not theirs or unknown.
    pub async fn revoke_family(
        &self,
        user_id: i64,
        family_id: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let _w = self.write_guard().await;
        let n = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1, revoked_reason = 'ended_by_user' \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Whether a family has been revoked (None: no such family).
    pub async fn family_revoked(&self, family_id: &str) -> Result<Option<bool>, sqlx::Error> {
        let row = sqlx::query("SELECT revoked_at FROM refresh_families WHERE id = $1")
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<Option<i64>, _>(0).map(|v| v.is_some()))
            .transpose()
    }

    /// Number of unused tokens in a family (exactly one while it is alive).
    pub async fn active_tokens_in_family(&self, family_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1 AND used_at IS NULL")
            .bind(family_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)
    }

    /// Families (not revoked) whose number of unused tokens is not exactly one: must be empty.
    pub async fn families_without_exactly_one_active_token(&self) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "SELECT COUNT(*) FROM refresh_families f WHERE f.revoked_at IS NULL AND \
             (SELECT COUNT(*) FROM refresh_tokens t WHERE t.family_id = f.id AND t.used_at IS NULL) <> 1",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)
    }

    /// Deletes families that ended (expired or revoked) more than `keep_ms` ago, with their tokens.
    pub async fn purge_ended_families(&self, now: i64, keep_ms: i64) -> Result<u64, sqlx::Error> {
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
}
