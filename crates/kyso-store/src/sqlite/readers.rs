//! Read connections for the hot path (authentication, the signing authorisation), kept outside
//! sqlx's pool.
//!
//! sqlx 0.9's pool pings every connection it takes back (`PoolConnection::return_to_pool`),
//! unconditionally: on SQLite that is one more round trip to the connection's thread, and its
//! context switches, for every statement. A connection to a local file does not go stale, so
//! these are simply lent out and taken back.

use std::sync::Mutex;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::Semaphore;

use crate::error::StoreError;
use crate::shared_impl::BoxFuture;

/// A fixed set of read connections.
#[derive(Debug)]
pub(super) struct Readers {
    idle: Mutex<Vec<SqliteConnection>>,
    /// One permit per connection in `idle` or lent out.
    permits: Semaphore,
    /// For a replacement when a lent connection is lost (its future dropped mid-statement).
    options: SqliteConnectOptions,
}

impl Readers {
    /// Opens `count` connections with `options`.
    pub(super) async fn open(
        options: &SqliteConnectOptions,
        count: usize,
    ) -> Result<Readers, StoreError> {
        let mut idle = Vec::with_capacity(count);
        for _ in 0..count {
            idle.push(
                options
                    .connect()
                    .await
                    .map_err(|source| StoreError::Connect { source })?,
            );
        }
        Ok(Readers {
            idle: Mutex::new(idle),
            permits: Semaphore::new(count),
            options: options.clone(),
        })
    }

    /// Runs `read` on a connection of the set, waiting for one if all are lent out.
    pub(super) async fn read<R, F>(&self, operation: &'static str, read: F) -> Result<R, StoreError>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<R, StoreError>>,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable {
                operation,
                detail: "the read connections are closed".into(),
            })?;
        let mut lent = Lent {
            readers: self,
            conn: self.take(),
            finished: false,
        };
        let conn = match &mut lent.conn {
            Some(conn) => conn,
            // Lost earlier (see `Lent`): open its replacement.
            None => lent.conn.insert(
                self.options
                    .connect()
                    .await
                    .map_err(StoreError::db(operation))?,
            ),
        };
        let result = read(conn).await;
        lent.finished = true;
        result
    }

    fn take(&self) -> Option<SqliteConnection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
}

/// A lent connection, given back when the read ends. If the read's future is dropped while a
/// statement runs, the connection is dropped with it rather than given back mid-statement (sqlx
/// closes it), and the next borrower opens a replacement.
struct Lent<'a> {
    readers: &'a Readers,
    conn: Option<SqliteConnection>,
    /// The read ran to its end.
    finished: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if !self.finished {
            return;
        }
        if let Some(conn) = self.conn.take() {
            self.readers
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use super::*;

    async fn readers(count: usize) -> (tempfile::TempDir, Readers) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("r.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true);
        (dir, Readers::open(&options, count).await.expect("open"))
    }

    fn count_to(
        n: i64,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64, StoreError>>
    {
        move |conn| {
            Box::pin(async move {
                sqlx::query_scalar(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) \
                     SELECT count(*) FROM c",
                )
                .bind(n)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::db("test"))
            })
        }
    }

    fn idle(readers: &Readers) -> usize {
        readers.idle.lock().expect("lock").len()
    }

    #[tokio::test]
    async fn connections_are_lent_and_given_back() {
        let (_dir, readers) = readers(2).await;
        assert_eq!(readers.read("test", count_to(10)).await.expect("read"), 10);
        assert_eq!(idle(&readers), 2);
        let (a, b, c) = tokio::join!(
            readers.read("test", count_to(1_000)),
            readers.read("test", count_to(2_000)),
            readers.read("test", count_to(3_000)),
        );
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (1_000, 2_000, 3_000));
        assert_eq!(idle(&readers), 2);
    }

    #[tokio::test]
    async fn a_read_dropped_midway_loses_its_connection_and_the_next_opens_another() {
        let (_dir, readers) = readers(1).await;
        let slow = readers.read("test", count_to(5_000_000));
        let dropped = tokio::time::timeout(Duration::from_millis(5), slow).await;
        assert!(dropped.is_err(), "the slow read was cut short");
        assert_eq!(idle(&readers), 0, "not given back mid-statement");
        assert_eq!(readers.read("test", count_to(7)).await.expect("read"), 7);
        assert_eq!(idle(&readers), 1, "the replacement is kept");
    }
}
