//! The pool's safety net: a connection that comes back inside a transaction is closed, never
//! lent again.
//!
//! sqlx only knows the transactions it opened and saw open: a `BEGIN` whose answer was never
//! read (the future was dropped while it was in flight) leaves PostgreSQL inside a transaction
//! that sqlx counts as none (launchbadge/sqlx#4393; the release check's `ping` ignores the
//! transaction status, #4409), and SQLite's worker thread finishes a `BEGIN` nobody waits for.
//! So the check asks the database itself, on every release (sqlx's `after_release` hook, which
//! runs in the pool's own task, so it cannot be cut short by a request going away):
//!
//! - PostgreSQL: `SELECT now() = statement_timestamp()` over the simple query protocol.
//!   `now()` is the start of the current transaction, `statement_timestamp()` the start of this
//!   statement; PostgreSQL gives the first statement of a transaction the same value for both,
//!   so they are equal exactly when no transaction block was already open. Inside an aborted
//!   block the statement fails (SQLSTATE 25P02), which also means "open".
//! - SQLite: no SQL asks for the autocommit state, but `BEGIN` fails inside a transaction. A
//!   deferred `BEGIN` takes no lock, and the `ROLLBACK` right after ends it (both in one string:
//!   one round trip to the connection's thread); if that `ROLLBACK` fails the check fails and
//!   the pool closes the connection. sqlx's own transaction depth is not enough here: it counts
//!   only the transactions sqlx began, not a `BEGIN` sent as SQL (the rotation's one-string
//!   transaction, cut before its `COMMIT` ran, is one).
//!
//! A closed connection's open transaction is rolled back by the database (PostgreSQL when the
//! session ends, SQLite in `sqlite3_close`).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AnyConnection, Connection, Executor, Row};

use super::Backend;

/// Counters of what the safety net closed.
#[derive(Debug, Default)]
pub(super) struct Net {
    open_transaction: AtomicU64,
    check_failed: AtomicU64,
}

impl Net {
    /// The `after_release` hook: `Ok(true)` lends the connection again, `Ok(false)` closes it,
    /// `Err` closes it without ceremony (it is broken).
    pub(super) async fn keep(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<bool, sqlx::Error> {
        match in_transaction(conn, backend).await {
            Ok(false) => Ok(true),
            Ok(true) => {
                self.open_transaction.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "a database connection came back to the pool inside a transaction: \
                     closed (the database rolls it back) instead of lent again"
                );
                Ok(false)
            }
            Err(e) => {
                self.check_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "release check of a database connection failed: closed");
                Err(e)
            }
        }
    }

    pub(super) fn open_transaction(&self) -> u64 {
        self.open_transaction.load(Ordering::Relaxed)
    }

    pub(super) fn check_failed(&self) -> u64 {
        self.check_failed.load(Ordering::Relaxed)
    }
}

/// Whether the database says a transaction is open on `conn` (or sqlx thinks one is).
async fn in_transaction(conn: &mut AnyConnection, backend: Backend) -> Result<bool, sqlx::Error> {
    let open = match backend {
        // A &str without arguments goes over the simple query protocol: one statement, one
        // transaction of its own when none is open (see the module docs).
        Backend::Postgres => match conn.fetch_one("SELECT now() = statement_timestamp()").await {
            Ok(row) => !row.try_get::<bool, _>(0)?,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("25P02") => true,
            Err(e) => return Err(e),
        },
        // Both statements in one string: one round trip to the connection's worker thread (sqlx
        // runs them in order and stops at the first error, so the ROLLBACK runs only after a
        // BEGIN that worked, and ends exactly that transaction).
        Backend::Sqlite => match conn.execute("BEGIN; ROLLBACK").await {
            Ok(_) => false,
            // "cannot start a transaction within a transaction"
            Err(sqlx::Error::Database(_)) => true,
            Err(e) => return Err(e),
        },
    };
    // Checked after the round trip above, which also ran any rollback sqlx had queued.
    Ok(open || conn.is_in_transaction())
}
