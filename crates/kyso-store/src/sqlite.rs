//! The SQLite store: the single-node default, one file under the data directory.
//!
//! WAL mode with `synchronous=FULL` (a commit is on disk before the call returns), foreign keys on,
//! a busy timeout for other processes (the CLI) touching the same file. Reads use a pool and never
//! block on writers.
//!
//! Writes use group commit: one writer task owns the single write connection, takes every write
//! queued so far (up to [`MAX_BATCH`]), runs them all in one `BEGIN IMMEDIATE` transaction, commits
//! once, and only then answers each caller. One fsync then covers a whole batch (with
//! `synchronous=FULL` a commit costs an fsync, which otherwise caps writes at a few hundred a second).
//! A refused write leaves the others alone; an unexpected failure or a failed commit fails the whole
//! batch (see `run_batch`). `BEGIN IMMEDIATE` takes the write lock up front, so read-then-write jobs (the
//! audit chain head) never hit SQLite's lock-upgrade deadlock against another process.

use std::str::FromStr;
use std::time::Duration;

use kyso_clock::SharedClock;
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::records::*;
use crate::rows::*;
use crate::shared_impl::{BoxFuture, impl_store};
use crate::validate;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent readers.
const READERS: u32 = 8;
/// Most writes committed together.
pub const MAX_BATCH: usize = 512;
/// Writes waiting for the writer before callers are slowed down.
const QUEUE: usize = 4096;

/// A [`Store`](crate::Store) on SQLite.
#[derive(Debug)]
pub struct SqliteStore {
    /// The one write connection's pool; the writer task uses it (tests reach it via `pool`).
    writer: SqlitePool,
    reader: SqlitePool,
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
    clock: SharedClock,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and runs the embedded migrations.
    pub async fn open(url: &str, clock: SharedClock) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl {
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let connect = |max: u32, options: SqliteConnectOptions| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(if in_memory { 1 } else { 0 })
                // An in-memory database lives as long as its one connection: never let it go.
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(3600))
                })
                .connect_with(options)
        };
        let (writer, reader) = if in_memory {
            // Each connection would get its own empty database: one connection serves everything.
            let pool = connect(1, options)
                .await
                .map_err(|source| StoreError::Connect { source })?;
            (pool.clone(), pool)
        } else {
            let options = options.journal_mode(SqliteJournalMode::Wal);
            let writer = connect(1, options.clone())
                .await
                .map_err(|source| StoreError::Connect { source })?;
            // Migrate before readers connect, so they see the final schema.
            sqlx::migrate!("migrations/sqlite")
                .run(&writer)
                .await
                .map_err(|source| StoreError::Migrate { source })?;
            let reader = connect(READERS, options)
                .await
                .map_err(|source| StoreError::Connect { source })?;
            return Ok(Self::start(writer, reader, clock));
        };
        sqlx::migrate!("migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        Ok(Self::start(writer, reader, clock))
    }

    fn start(writer: SqlitePool, reader: SqlitePool, clock: SharedClock) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        // The task ends when the store (the last sender) is dropped.
        tokio::spawn(run_writer(writer.clone(), queue));
        SqliteStore {
            writer,
            reader,
            jobs,
            clock,
        }
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Queues `job` for the writer and waits until the batch holding it has committed.
    async fn write<R, F>(&self, operation: &'static str, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<R, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            operation,
            run: job,
            reply,
        });
        let gone = || StoreError::Unavailable {
            operation,
            detail: "the SQLite writer has stopped".into(),
        };
        self.jobs.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// A one-statement write: on SQLite the same group-commit path as any other write.
    async fn write_one<R, F>(&self, operation: &'static str, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<R, StoreError>>
            + Send
            + 'static,
    {
        self.write(operation, job).await
    }

    /// The write pool, for tests that need to reach under the API (e.g. to tamper with a row).
    #[doc(hidden)]
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }
}

impl_store!(SqliteStore, "sqlite", "", SqliteConnection);

/// One queued write, type-erased so jobs with different results share the queue.
trait WriteJob: Send {
    /// Runs the job's statements; returns whether it broke the batch and how to answer once the
    /// batch's fate is known.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Ran>;
    /// Answers without running (the batch could not start, or broke before this job).
    fn fail(self: Box<Self>, detail: &str);
}

/// Delivers a job's result, given the batch's commit outcome (`Err` holds why nothing was committed).
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A job that has run.
struct Ran {
    /// The job failed in a way that may have left some of its writes behind (see [`run_batch`]).
    breaks_batch: bool,
    answer: Answer,
}

struct Job<F, R> {
    operation: &'static str,
    run: F,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteJob for Job<F, R>
where
    R: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<R, StoreError>>
        + Send
        + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Ran> {
        let Job {
            operation,
            run,
            reply,
        } = *self;
        Box::pin(async move {
            let result = run(conn).await;
            let breaks_batch = matches!(&result, Err(e) if !e.is_refusal());
            let answer = Box::new(move |commit: Result<(), &str>| {
                let result = match (commit, result) {
                    (Ok(()), result) | (Err(_), result @ Err(_)) => result,
                    (Err(detail), Ok(_)) => Err(StoreError::Unavailable {
                        operation,
                        detail: detail.to_owned(),
                    }),
                };
                // The caller may have gone away; the outcome stands either way.
                let _ = reply.send(result);
            });
            Ran {
                breaks_batch,
                answer,
            }
        })
    }

    fn fail(self: Box<Self>, detail: &str) {
        let _ = self.reply.send(Err(StoreError::Unavailable {
            operation: self.operation,
            detail: detail.to_owned(),
        }));
    }
}

async fn run_writer(pool: SqlitePool, mut queue: mpsc::Receiver<Box<dyn WriteJob>>) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        run_batch(&pool, std::mem::take(&mut batch)).await;
    }
}

/// Runs a batch of jobs in one transaction and commits it once.
///
/// No savepoints (each would cost two more round trips per job): a job that refuses (a
/// [`StoreError::is_refusal`] error: not found, duplicate serial, already revoked...) does so before
/// its first write or through one failing statement, which SQLite undoes on its own while keeping the
/// transaction; the other jobs' writes stand. Any other error (an I/O error, a corrupt row) may have
/// left part of a job's writes behind, or made SQLite roll back the whole transaction: the batch is
/// rolled back and every job in it is answered with an error, so nothing half-done is ever committed.
async fn run_batch(pool: &SqlitePool, batch: Vec<Box<dyn WriteJob>>) {
    let fail_all = |batch: Vec<Box<dyn WriteJob>>, detail: &str| {
        batch.into_iter().for_each(|job| job.fail(detail));
    };
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return fail_all(batch, &e.to_string()),
    };
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &e.to_string()),
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut broken = false;
    for job in jobs.by_ref() {
        let ran = job.run(&mut tx).await;
        answers.push(ran.answer);
        if ran.breaks_batch {
            broken = true;
            break;
        }
    }
    let outcome = if broken {
        let _ = tx.rollback().await;
        let detail = "another write in the same transaction failed; nothing was stored";
        fail_all(jobs.collect(), detail);
        Err(detail.to_owned())
    } else {
        tx.commit().await.map_err(|e| e.to_string())
    };
    for answer in answers {
        answer(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use kyso_clock::ManualClock;

    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn sqlite_durability_pragmas_on_every_pool() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("kyso.db").display());
        let store = SqliteStore::open(&url, ManualClock::at_unix(0).shared())
            .await
            .expect("open");
        for pool in [store.pool(), store.reader()] {
            let journal: (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert_eq!(journal.0, "wal");
            // synchronous: 2 = FULL.
            let sync: (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert_eq!(sync.0, 2);
            let fk: (i64,) = sqlx::query_as("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert_eq!(fk.0, 1);
            let busy: (i64,) = sqlx::query_as("PRAGMA busy_timeout")
                .fetch_one(pool)
                .await
                .expect("pragma");
            assert_eq!(busy.0, 10_000);
        }
    }

    #[tokio::test]
    async fn sqlite_reopen_keeps_data_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("kyso.db").display());
        let clock = ManualClock::at_unix(1_000).shared();
        {
            let store = SqliteStore::open(&url, clock.clone()).await.expect("open");
            store
                .create_staff(&StaffFields {
                    full_name: "An".into(),
                    agency: "STP".into(),
                    ..Default::default()
                })
                .await
                .expect("staff");
        }
        let store = SqliteStore::open(&url, clock).await.expect("reopen");
        assert_eq!(store.list_staff(0, 10).await.expect("list").len(), 1);
    }
}

#[cfg(test)]
mod group_commit_tests {
    use kyso_clock::ManualClock;

    use super::*;

    type Reply = oneshot::Receiver<Result<i64, StoreError>>;

    fn make_job<F>(run: F) -> (Box<dyn WriteJob>, Reply)
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            operation: "test",
            run,
            reply,
        });
        (job, answer)
    }

    /// A job that inserts a staff row named `name`, then fails with `error` if given.
    fn job(name: &'static str, error: Option<StoreError>) -> (Box<dyn WriteJob>, Reply) {
        make_job(move |conn| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO staff (full_name, agency, created_at, updated_at) \
                     VALUES ($1, 'STP', 0, 0) RETURNING id",
                )
                .bind(name)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::db("test"))?;
                match error {
                    Some(e) => Err(e),
                    None => Ok(id),
                }
            })
        })
    }

    async fn names(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar("SELECT full_name FROM staff ORDER BY id")
            .fetch_all(store.reader())
            .await
            .expect("names")
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("kyso.db").display());
        let store = SqliteStore::open(&url, ManualClock::at_unix(0).shared())
            .await
            .expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn group_commit_refusal_leaves_other_jobs_committed() {
        let (_dir, store) = store().await;
        let (a, ra) = job("a", None);
        // A refusal after a write is not something store jobs do; a refusal before any write is.
        let (b, rb) = make_job(|_| {
            Box::pin(async {
                Err(StoreError::NotFound {
                    entity: "staff",
                    key: "9".into(),
                })
            })
        });
        let (c, rc) = job("c", None);
        run_batch(store.pool(), vec![a, b, c]).await;
        assert!(ra.await.expect("answered").is_ok());
        assert_eq!(
            rb.await.expect("answered").expect_err("refused").code(),
            "not_found"
        );
        assert!(rc.await.expect("answered").is_ok());
        assert_eq!(names(&store).await, ["a", "c"]);
    }

    #[tokio::test]
    async fn group_commit_failure_rolls_back_the_whole_batch() {
        let (_dir, store) = store().await;
        let corrupt = StoreError::Corrupt {
            what: "test",
            detail: "after a write".into(),
        };
        let (a, ra) = job("a", None);
        let (b, rb) = job("b", Some(corrupt));
        let (c, rc) = job("c", None);
        run_batch(store.pool(), vec![a, b, c]).await;
        assert_eq!(
            ra.await.expect("answered").expect_err("rolled back").code(),
            "store_unavailable"
        );
        assert_eq!(
            rb.await.expect("answered").expect_err("own error").code(),
            "store_corrupt"
        );
        assert_eq!(
            rc.await.expect("answered").expect_err("not run").code(),
            "store_unavailable"
        );
        assert!(
            names(&store).await.is_empty(),
            "nothing half-done is committed"
        );
        // The writer goes on working afterwards.
        let (d, rd) = job("d", None);
        run_batch(store.pool(), vec![d]).await;
        assert!(rd.await.expect("answered").is_ok());
        assert_eq!(names(&store).await, ["d"]);
    }
}
