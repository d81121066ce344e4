//! The PostgreSQL store: many kyso nodes sharing one database.
//!
//! PostgreSQL's default `synchronous_commit = on` makes a commit durable before the call returns.
//! Writers that read before writing lock the row they depend on (`FOR UPDATE`): the audit chain
//! head and the CRL counter, so appends and CRL stores are serialised across nodes.

use std::str::FromStr;
use std::time::Duration;

use kyso_clock::SharedClock;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::error::StoreError;
use crate::records::*;
use crate::rows::*;
use crate::shared_impl::{BoxFuture, impl_store};
use crate::validate;

/// Connections per node.
const MAX_CONNECTIONS: u32 = 16;

/// A [`Store`](crate::Store) on PostgreSQL.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    clock: SharedClock,
}

impl PostgresStore {
    /// Connects to `url` and runs the embedded migrations (the migrator takes an advisory lock, so
    /// nodes starting together do not race).
    pub async fn open(url: &str, clock: SharedClock) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { source })?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        Ok(PostgresStore { pool, clock })
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `read` on a connection of the pool (SQLite keeps its hot-path reads apart).
    async fn hot_read<R, F>(&self, operation: &'static str, read: F) -> Result<R, StoreError>
    where
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<R, StoreError>>,
    {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db(operation))?;
        read(&mut conn).await
    }

    /// Runs `job` in its own transaction and commits it; an error rolls it back.
    async fn write<R, F>(&self, operation: &'static str, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<R, StoreError>>
            + Send
            + 'static,
    {
        let mut tx = self.pool.begin().await.map_err(StoreError::db(operation))?;
        let result = job(&mut tx).await?;
        tx.commit().await.map_err(StoreError::db(operation))?;
        Ok(result)
    }

    /// Runs `job`, which must be ONE statement, in autocommit mode: a single statement is atomic and
    /// durable on its own, and this saves the `BEGIN` and `COMMIT` round trips of [`Self::write`].
    async fn write_one<R, F>(&self, operation: &'static str, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<R, StoreError>>
            + Send
            + 'static,
    {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db(operation))?;
        job(&mut conn).await
    }

    /// One audit record in its own transaction (the head's row lock orders appenders on every node).
    ///
    /// With `authorised`, the transaction first reads the authorisation epoch under a share lock:
    /// a withdrawal's trigger updates that row, so it waits for this transaction to commit, or
    /// this read waits for it and then sees the advanced epoch (and writes nothing). The share
    /// lock is taken before the head's, as every withdrawal takes the epoch's before any audit
    /// append of its own, so the two never wait on each other in a cycle.
    async fn write_audit(
        &self,
        event: NewAuditEvent,
        details: String,
        authorised: Option<AuthorisationEpoch>,
    ) -> Result<AuditRecord, StoreError> {
        let clock = self.clock.clone();
        self.write("append_audit", move |conn| {
            Box::pin(async move {
                if let Some(AuthorisationEpoch(expected)) = authorised {
                    let current: i64 = sqlx::query_scalar(
                        "SELECT value FROM authorisation_epoch WHERE id = 1 FOR SHARE",
                    )
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db("append_audit"))?;
                    if current != expected {
                        return Err(StoreError::AuthorisationChanged { expected, current });
                    }
                }
                Self::append_audit_on(conn, &clock, event, details, "append_audit").await
            })
        })
        .await
    }

    /// One timestamp serial, a single INSERT in autocommit mode.
    async fn write_timestamp(
        &self,
        ts: NewTimestamp,
        now: i64,
    ) -> Result<TimestampRecord, StoreError> {
        self.write_one("record_timestamp", move |conn| {
            Box::pin(Self::insert_timestamp_on(conn, ts, now))
        })
        .await
    }

    /// The pool, for tests that need to reach under the API (e.g. to tamper with a row).
    #[doc(hidden)]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_store!(PostgresStore, "postgres", " FOR UPDATE", PgConnection);
