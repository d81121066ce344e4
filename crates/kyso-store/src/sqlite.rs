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
//!
//! The two writes of the hot paths, an audit record and a timestamp serial, are not jobs of
//! statements but rows: the writer appends all the audit records of a batch with one multi-row
//! INSERT, hashed from the chain head it wrote last (a stale head, after another process
//! appended, collides on `seq` and is read again), and likewise the serials. A batch of only one
//! kind of row is that one statement in autocommit mode, without BEGIN and COMMIT. Every
//! statement is a round trip to sqlx's SQLite thread (and a context switch or two), and under
//! load such rows are nearly all a batch holds: a batch of N signatures costs one statement
//! rather than 2N + 2.

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

mod readers;
use readers::Readers;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent readers.
const READERS: u32 = 8;
/// Read connections of the hot path (see [`readers`]), besides the pool's.
const HOT_READERS: usize = 4;
/// Most writes committed together.
pub const MAX_BATCH: usize = 512;
/// Most yields the writer makes to let runnable tasks join a batch before it starts.
const GATHER_YIELDS: usize = 4;
/// Writes waiting for the writer before callers are slowed down.
const QUEUE: usize = 4096;

/// A [`Store`](crate::Store) on SQLite.
#[derive(Debug)]
pub struct SqliteStore {
    /// The write connection's pool: the writer task takes its connection out of it (in memory,
    /// borrows it per batch); tests reach under the API through it (`pool`).
    writer: SqlitePool,
    reader: SqlitePool,
    /// The hot path's reads; `None` in memory, where the pool's one connection is the database.
    hot: Option<Readers>,
    jobs: mpsc::Sender<Write>,
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
                // A connection to a local file does not go stale as a network one does: pinging
                // it before each use (sqlx's default) would cost a round trip to its thread per
                // statement.
                .test_before_acquire(false)
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
            let hot = Readers::open(&options, HOT_READERS).await?;
            let reader = connect(READERS, options)
                .await
                .map_err(|source| StoreError::Connect { source })?;
            return Ok(Self::start(writer, reader, Some(hot), clock));
        };
        sqlx::migrate!("migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        Ok(Self::start(writer, reader, None, clock))
    }

    fn start(
        writer: SqlitePool,
        reader: SqlitePool,
        hot: Option<Readers>,
        clock: SharedClock,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        // The task ends when the store (the last sender) is dropped.
        // In memory the pool's one connection is the database: the writer borrows it per batch.
        let dedicated = hot.is_some();
        tokio::spawn(run_writer(writer.clone(), clock.clone(), queue, dedicated));
        SqliteStore {
            writer,
            reader,
            hot,
            jobs,
            clock,
        }
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Runs `read` on a hot-path read connection (outside the pool, see [`readers`]).
    async fn hot_read<R, F>(&self, operation: &'static str, read: F) -> Result<R, StoreError>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<R, StoreError>>,
    {
        match &self.hot {
            Some(readers) => readers.read(operation, read).await,
            None => {
                let mut conn = self
                    .reader
                    .acquire()
                    .await
                    .map_err(StoreError::db(operation))?;
                read(&mut conn).await
            }
        }
    }

    /// Queues `job` for the writer and waits until the batch holding it has committed.
    async fn write<R, F>(&self, operation: &'static str, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<R, StoreError>>
            + Send
            + 'static,
    {
        self.queue(operation, |reply| {
            Write::Job(Box::new(Job {
                operation,
                run: job,
                reply,
            }))
        })
        .await
    }

    /// Queues `write` (made with the reply it answers on) and waits until its batch has committed.
    async fn queue<R>(
        &self,
        operation: &'static str,
        write: impl FnOnce(oneshot::Sender<Result<R, StoreError>>) -> Write,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable {
            operation,
            detail: "the SQLite writer has stopped".into(),
        };
        self.jobs.send(write(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// One audit record, appended with the others of its batch (see [`append_audits`]).
    async fn write_audit(
        &self,
        event: NewAuditEvent,
        details: String,
        authorised: Option<AuthorisationEpoch>,
    ) -> Result<AuditRecord, StoreError> {
        self.queue("append_audit", |reply| {
            Write::Audit(QueuedAudit {
                event,
                details,
                authorised,
                reply,
            })
        })
        .await
    }

    /// One timestamp serial, inserted with the others of its batch (see [`insert_timestamps`]).
    async fn write_timestamp(
        &self,
        ts: NewTimestamp,
        now: i64,
    ) -> Result<TimestampRecord, StoreError> {
        self.queue("record_timestamp", |reply| {
            Write::Timestamp(QueuedTimestamp { ts, now, reply })
        })
        .await
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
            Ran {
                breaks_batch,
                answer: answer_with(operation, reply, result),
            }
        })
    }

    fn fail(self: Box<Self>, detail: &str) {
        let _ = self.reply.send(Err(unavailable(self.operation, detail)));
    }
}

/// What the writer's queue carries.
enum Write {
    /// Statements of any kind, run in queue order.
    Job(Box<dyn WriteJob>),
    /// An audit record, appended with the batch's others in one INSERT.
    Audit(QueuedAudit),
    /// A timestamp serial, inserted with the batch's others in one INSERT.
    Timestamp(QueuedTimestamp),
}

struct QueuedAudit {
    event: NewAuditEvent,
    /// The event's details as compact JSON text, already checked.
    details: String,
    /// The authorisation epoch the record may only be written at (it releases a signature).
    authorised: Option<AuthorisationEpoch>,
    reply: oneshot::Sender<Result<AuditRecord, StoreError>>,
}

struct QueuedTimestamp {
    ts: NewTimestamp,
    /// `created_at`.
    now: i64,
    reply: oneshot::Sender<Result<TimestampRecord, StoreError>>,
}

/// Rows per multi-row INSERT: 9 parameters each stays far below SQLite's 32,766.
const ROWS_PER_INSERT: usize = 128;

/// The writer task: one batch at a time, on a connection of its own when `dedicated` (taken
/// out of the pool, which would ping it on every return: a round trip per batch), else borrowed
/// from the pool per batch. A batch that could not begin or commit leaves the connection behind.
async fn run_writer(
    pool: SqlitePool,
    clock: SharedClock,
    mut queue: mpsc::Receiver<Write>,
    dedicated: bool,
) {
    let mut batch: Vec<Write> = Vec::with_capacity(MAX_BATCH);
    let mut head = None;
    let mut own: Option<SqliteConnection> = None;
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Let the tasks already runnable queue their writes too before the batch starts, for
        // as long as each yield brings more (a few times at most): a yield costs nothing when
        // no task is runnable, and under load it makes batches larger, so fewer round trips
        // to the SQLite thread and fewer fsyncs per write.
        for _ in 0..GATHER_YIELDS {
            let before = batch.len();
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            if batch.len() == before || batch.len() == MAX_BATCH {
                break;
            }
        }
        let batch = std::mem::take(&mut batch);
        let healthy = if dedicated {
            let conn = match own.as_mut() {
                Some(conn) => conn,
                None => match pool.acquire().await {
                    Ok(conn) => own.insert(conn.detach()),
                    Err(e) => {
                        fail_all(batch, &e.to_string());
                        continue;
                    }
                },
            };
            run_batch(conn, &clock, &mut head, batch).await
        } else {
            match pool.acquire().await {
                Ok(mut conn) => run_batch(&mut conn, &clock, &mut head, batch).await,
                Err(e) => {
                    fail_all(batch, &e.to_string());
                    continue;
                }
            }
        };
        if !healthy {
            own = None;
            head = None;
        }
    }
}

/// The audit chain head as this writer last wrote it: the next append starts from here without
/// reading it. Another process (the CLI) appending meanwhile makes that append's first `seq`
/// collide with its row (the primary key), which sends the writer back to the stored head.
#[derive(Clone, Copy, Debug)]
struct AuditHead {
    seq: i64,
    hash: [u8; crate::audit::HASH_LEN],
}

/// Answers every write of `batch` with `detail`, without running it.
fn fail_all(batch: impl IntoIterator<Item = Write>, detail: &str) {
    for write in batch {
        match write {
            Write::Job(job) => job.fail(detail),
            Write::Audit(audit) => {
                let _ = audit.reply.send(Err(unavailable("append_audit", detail)));
            }
            Write::Timestamp(ts) => {
                let _ = ts.reply.send(Err(unavailable("record_timestamp", detail)));
            }
        }
    }
}

fn unavailable(operation: &'static str, detail: &str) -> StoreError {
    StoreError::Unavailable {
        operation,
        detail: detail.to_owned(),
    }
}

/// Runs a batch of writes in one transaction and commits it once.
///
/// Jobs run in queue order. Audit records and timestamp serials wait in `pending` and are written
/// together before the next job (which may read the chain head or the ledger) and at the end, so
/// every job sees the writes queued before it.
///
/// No savepoints (each would cost two more round trips per job): a job that refuses (a
/// [`StoreError::is_refusal`] error: not found, duplicate serial, already revoked...) does so before
/// its first write or through one failing statement, which SQLite undoes on its own while keeping the
/// transaction; the other jobs' writes stand. Any other error (an I/O error, a corrupt row) may have
/// left part of a job's writes behind, or made SQLite roll back the whole transaction: the batch is
/// rolled back and every job in it is answered with an error, so nothing half-done is ever committed.
///
/// Returns `false` if the connection failed (a transaction could not begin or commit).
async fn run_batch(
    conn: &mut SqliteConnection,
    clock: &SharedClock,
    head: &mut Option<AuditHead>,
    batch: Vec<Write>,
) -> bool {
    // A batch of audit records only, or of serials only, that fits one INSERT: that statement
    // alone is atomic and, with synchronous=FULL, durable when it returns, so it needs no
    // BEGIN and COMMIT (two more round trips to the SQLite thread).
    let batch = match one_statement_batch(batch) {
        Ok(OneStatement::Audits(audits)) => {
            let mut answers = Vec::with_capacity(audits.len());
            match append_audits(conn, clock, head, audits, false, &mut answers).await {
                Ok(true) => {
                    answers.into_iter().for_each(|answer| answer(Ok(())));
                    return true;
                }
                Ok(false) => return true,
                // Another process appended: again, under the write lock.
                Err(audits) => audits.into_iter().map(Write::Audit).collect(),
            }
        }
        Ok(OneStatement::Timestamps(timestamps)) => {
            match insert_timestamps_at_once(conn, timestamps).await {
                // A duplicate serial: the statement did nothing; one by one in a transaction.
                Err(timestamps) => timestamps.into_iter().map(Write::Timestamp).collect(),
                Ok(()) => return true,
            }
        }
        Err(batch) => batch,
    };
    run_transaction(conn, clock, head, batch).await
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction (see [`run_batch`]).
async fn run_transaction(
    conn: &mut SqliteConnection,
    clock: &SharedClock,
    head: &mut Option<AuditHead>,
    batch: Vec<Write>,
) -> bool {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            fail_all(batch, &e.to_string());
            return false;
        }
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
    let mut pending = Pending::default();
    let mut writes = batch.into_iter();
    let mut broken = false;
    for write in writes.by_ref() {
        match write {
            Write::Audit(audit) => pending.audits.push(audit),
            Write::Timestamp(ts) => pending.timestamps.push(ts),
            Write::Job(job) => {
                if !pending.flush(&mut tx, clock, head, &mut answers).await {
                    broken = true;
                    fail_all(std::iter::once(Write::Job(job)), BATCH_FAILED);
                    break;
                }
                let ran = job.run(&mut tx).await;
                // The job may have appended to the chain itself.
                *head = None;
                answers.push(ran.answer);
                if ran.breaks_batch {
                    broken = true;
                    break;
                }
            }
        }
    }
    if !broken && !pending.flush(&mut tx, clock, head, &mut answers).await {
        broken = true;
    }
    let outcome = if broken {
        let _ = tx.rollback().await;
        pending.fail(BATCH_FAILED);
        fail_all(writes, BATCH_FAILED);
        Err(BATCH_FAILED.to_owned())
    } else {
        tx.commit().await.map_err(|e| e.to_string())
    };
    if outcome.is_err() {
        *head = None;
    }
    for answer in answers {
        answer(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    }
    // A broken batch was rolled back on a working connection; a failed commit is the
    // connection's.
    broken || outcome.is_ok()
}

/// A batch that one INSERT can write.
enum OneStatement {
    Audits(Vec<QueuedAudit>),
    Timestamps(Vec<QueuedTimestamp>),
}

/// The batch as [`OneStatement`], or given back unchanged.
fn one_statement_batch(batch: Vec<Write>) -> Result<OneStatement, Vec<Write>> {
    let fits = !batch.is_empty() && batch.len() <= ROWS_PER_INSERT;
    if fits && batch.iter().all(|w| matches!(w, Write::Audit(_))) {
        let audits = batch.into_iter().filter_map(Write::into_audit).collect();
        return Ok(OneStatement::Audits(audits));
    }
    if fits && batch.iter().all(|w| matches!(w, Write::Timestamp(_))) {
        let timestamps = batch
            .into_iter()
            .filter_map(Write::into_timestamp)
            .collect();
        return Ok(OneStatement::Timestamps(timestamps));
    }
    Err(batch)
}

impl Write {
    fn into_audit(self) -> Option<QueuedAudit> {
        match self {
            Write::Audit(audit) => Some(audit),
            _ => None,
        }
    }

    fn into_timestamp(self) -> Option<QueuedTimestamp> {
        match self {
            Write::Timestamp(ts) => Some(ts),
            _ => None,
        }
    }
}

const BATCH_FAILED: &str = "another write in the same transaction failed; nothing was stored";

/// The rows of a batch not yet written.
#[derive(Default)]
struct Pending {
    audits: Vec<QueuedAudit>,
    timestamps: Vec<QueuedTimestamp>,
}

impl Pending {
    /// Writes the pending rows; `false` if that broke the batch (each row is then answered).
    async fn flush(
        &mut self,
        conn: &mut SqliteConnection,
        clock: &SharedClock,
        head: &mut Option<AuditHead>,
        answers: &mut Vec<Answer>,
    ) -> bool {
        if !self.audits.is_empty() {
            let audits = std::mem::take(&mut self.audits);
            if !matches!(
                append_audits(conn, clock, head, audits, true, answers).await,
                Ok(true)
            ) {
                return false;
            }
        }
        if !self.timestamps.is_empty() {
            let timestamps = std::mem::take(&mut self.timestamps);
            if !insert_timestamps(conn, timestamps, answers).await {
                return false;
            }
        }
        true
    }

    fn fail(self, detail: &str) {
        fail_all(
            self.audits
                .into_iter()
                .map(Write::Audit)
                .chain(self.timestamps.into_iter().map(Write::Timestamp)),
            detail,
        );
    }
}

/// Appends `audits` to the chain from `head` (read from the database when not known), with the
/// hashes computed here in order and one INSERT per [`ROWS_PER_INSERT`] records; the table's
/// trigger advances the stored head row by row.
///
/// If the first INSERT finds its `seq` taken, another process appended since `head` was noted.
/// Under the write lock (`locked`, inside `BEGIN IMMEDIATE`) the stored head is then read and the
/// records hashed again, once; without it, the records are given back (`Err`) to be appended
/// again under the lock. Any other failure breaks the batch: every record is answered with it and
/// `Ok(false)` returned.
///
/// Records that release a signature carry the authorisation epoch they may be written at. Under
/// the lock the epoch is read once and a record of another epoch refused alone
/// (`AuthorisationChanged`); without it, the one INSERT holds the condition itself (one epoch for
/// all, else the records are given back at once) and, if the epoch has moved, writes nothing and
/// gives the records back too.
async fn append_audits(
    conn: &mut SqliteConnection,
    clock: &SharedClock,
    head: &mut Option<AuditHead>,
    mut audits: Vec<QueuedAudit>,
    locked: bool,
    answers: &mut Vec<Answer>,
) -> Result<bool, Vec<QueuedAudit>> {
    const OP: &str = "append_audit";
    let condition = if locked {
        if audits.iter().any(|a| a.authorised.is_some()) {
            match refuse_unauthorised(conn, audits).await {
                Ok(kept) => audits = kept,
                Err(()) => return Ok(false),
            }
            if audits.is_empty() {
                return Ok(true);
            }
        }
        None
    } else {
        match one_epoch(&audits) {
            Ok(condition) => condition,
            Err(()) => return Err(audits),
        }
    };
    let mut retried = false;
    let (rows, last) = loop {
        let start = match head.take() {
            Some(start) => start,
            None => match read_audit_head(conn).await {
                Ok(start) => start,
                Err(detail) => {
                    fail_audits(audits, &detail);
                    return Ok(false);
                }
            },
        };
        let (rows, last) = chain_rows(clock, start, &audits);
        match insert_audit_rows(conn, &audits, &rows, condition).await {
            Ok(true) => break (rows, last),
            // The epoch has moved: nothing was written; again, under the write lock.
            Ok(false) => {
                *head = Some(start);
                return Err(audits);
            }
            Err((true, e)) if is_unique_violation(&e) && !locked => return Err(audits),
            Err((true, e)) if is_unique_violation(&e) && !retried => retried = true,
            Err((_, e)) => {
                fail_audits(audits, &e.to_string());
                return Ok(false);
            }
        }
    };
    *head = Some(last);
    for (audit, row) in audits.into_iter().zip(rows) {
        let QueuedAudit {
            event,
            details,
            reply,
            ..
        } = audit;
        let record = AuditRecord {
            seq: row.seq,
            at: row.at,
            actor: event.actor,
            action: event.action,
            target: event.target,
            outcome: event.outcome,
            details,
            prev_hash: row.prev_hash.to_vec(),
            hash: row.hash.to_vec(),
        };
        answers.push(answer_with(OP, reply, Ok(record)));
    }
    Ok(true)
}

/// The chained fields of one audit record to be written.
struct ChainRow {
    seq: i64,
    at: i64,
    prev_hash: [u8; crate::audit::HASH_LEN],
    hash: [u8; crate::audit::HASH_LEN],
}

async fn read_audit_head(conn: &mut SqliteConnection) -> Result<AuditHead, String> {
    let (seq, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    let hash = <[u8; crate::audit::HASH_LEN]>::try_from(hash.as_slice())
        .map_err(|_| format!("audit head hash is corrupt: {}", hex::encode(&hash)))?;
    Ok(AuditHead { seq, hash })
}

/// Sequence numbers, times and hashes of `audits` appended after `start`, and the new head.
fn chain_rows(
    clock: &SharedClock,
    start: AuditHead,
    audits: &[QueuedAudit],
) -> (Vec<ChainRow>, AuditHead) {
    let mut head = start;
    let rows = audits
        .iter()
        .map(|audit| {
            let seq = head.seq + 1;
            // Read by the one writer, in chain order, so `at` never decreases along the chain.
            let at = clock.now_unix();
            let hash = crate::audit::AuditHashInput {
                seq,
                at,
                actor: &audit.event.actor,
                action: &audit.event.action,
                target: &audit.event.target,
                outcome: audit.event.outcome,
                details: &audit.details,
                prev_hash: &head.hash,
            }
            .hash();
            let row = ChainRow {
                seq,
                at,
                prev_hash: head.hash,
                hash,
            };
            head = AuditHead { seq, hash };
            row
        })
        .collect();
    (rows, head)
}

/// The one authorisation epoch `audits` may be written at (`None` if none is bound to one), or
/// `Err` if they name several.
fn one_epoch(audits: &[QueuedAudit]) -> Result<Option<i64>, ()> {
    let mut epochs = audits.iter().filter_map(|a| a.authorised);
    let Some(first) = epochs.next() else {
        return Ok(None);
    };
    if epochs.all(|e| e == first) {
        Ok(Some(first.0))
    } else {
        Err(())
    }
}

/// Under the write lock: refuses (answering at once, as nothing of theirs will be written) the
/// records bound to an authorisation epoch other than the current one, and gives back the rest.
/// `Err` if the epoch could not be read (every record is then answered with the failure).
async fn refuse_unauthorised(
    conn: &mut SqliteConnection,
    audits: Vec<QueuedAudit>,
) -> Result<Vec<QueuedAudit>, ()> {
    let current: i64 =
        match sqlx::query_scalar("SELECT value FROM authorisation_epoch WHERE id = 1")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(current) => current,
            Err(e) => {
                fail_audits(audits, &e.to_string());
                return Err(());
            }
        };
    let (kept, refused): (Vec<_>, Vec<_>) = audits
        .into_iter()
        .partition(|a| a.authorised.is_none_or(|e| e.0 == current));
    for audit in refused {
        let expected = audit.authorised.map_or(current, |e| e.0);
        let _ = audit
            .reply
            .send(Err(StoreError::AuthorisationChanged { expected, current }));
    }
    Ok(kept)
}

/// Inserts the rows, [`ROWS_PER_INSERT`] per statement; on failure, whether it was the first.
/// With `condition`, an authorisation epoch, each statement writes its rows only if the epoch is
/// still that (`Ok(false)`, after the first statement, if it was not: `condition` is for a batch
/// of one statement).
async fn insert_audit_rows(
    conn: &mut SqliteConnection,
    audits: &[QueuedAudit],
    rows: &[ChainRow],
    condition: Option<i64>,
) -> Result<bool, (bool, sqlx::Error)> {
    debug_assert!(condition.is_none() || audits.len() <= ROWS_PER_INSERT);
    let pairs: Vec<(&QueuedAudit, &ChainRow)> = audits.iter().zip(rows).collect();
    for (index, chunk) in pairs.chunks(ROWS_PER_INSERT).enumerate() {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, prev_hash, hash) ",
        );
        if condition.is_some() {
            insert.push("SELECT * FROM (");
        }
        insert.push_values(chunk, |mut values, (audit, row)| {
            values
                .push_bind(row.seq)
                .push_bind(row.at)
                .push_bind(&audit.event.actor)
                .push_bind(&audit.event.action)
                .push_bind(&audit.event.target)
                .push_bind(audit.event.outcome.as_str())
                .push_bind(&audit.details)
                .push_bind(row.prev_hash.as_slice())
                .push_bind(row.hash.as_slice());
        });
        if let Some(epoch) = condition {
            insert
                .push(") WHERE (SELECT value FROM authorisation_epoch WHERE id = 1) = ")
                .push_bind(epoch);
        }
        let done = insert
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|e| (index == 0, e))?;
        if done.rows_affected() != chunk.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

fn fail_audits(audits: Vec<QueuedAudit>, detail: &str) {
    fail_all(audits.into_iter().map(Write::Audit), detail);
}

/// Inserts `timestamps` with one INSERT per [`ROWS_PER_INSERT`]. A serial already taken (in the
/// ledger, or twice in the batch) fails that statement alone, which SQLite undoes: its rows are
/// then inserted one by one, so only the duplicate is refused. Any other failure breaks the batch.
async fn insert_timestamps(
    conn: &mut SqliteConnection,
    timestamps: Vec<QueuedTimestamp>,
    answers: &mut Vec<Answer>,
) -> bool {
    const OP: &str = "record_timestamp";
    let mut timestamps = timestamps.into_iter().peekable();
    while timestamps.peek().is_some() {
        let chunk: Vec<QueuedTimestamp> = timestamps.by_ref().take(ROWS_PER_INSERT).collect();
        let result = timestamps_insert(&chunk).build().execute(&mut *conn).await;
        match result {
            Ok(_) => {
                for QueuedTimestamp { ts, now, reply } in chunk {
                    answers.push(answer_with(OP, reply, Ok(ts.recorded(now))));
                }
            }
            Err(e) if is_unique_violation(&e) => {
                for QueuedTimestamp { ts, now, reply } in chunk {
                    let result = SqliteStore::insert_timestamp_on(conn, ts, now).await;
                    let refused = matches!(&result, Err(e) if e.is_refusal());
                    if result.is_err() && !refused {
                        let detail = result.as_ref().err().map(ToString::to_string);
                        let _ = reply.send(result);
                        let detail = detail.unwrap_or_default();
                        fail_timestamps(timestamps, &detail);
                        return false;
                    }
                    answers.push(answer_with(OP, reply, result));
                }
            }
            Err(e) => {
                let detail = e.to_string();
                fail_timestamps(chunk.into_iter().chain(timestamps), &detail);
                return false;
            }
        }
    }
    true
}

/// A batch of at most [`ROWS_PER_INSERT`] serials in one INSERT, in autocommit mode: answered
/// here if it ran; given back untouched if a serial was taken (the statement then did nothing).
async fn insert_timestamps_at_once(
    conn: &mut SqliteConnection,
    timestamps: Vec<QueuedTimestamp>,
) -> Result<(), Vec<QueuedTimestamp>> {
    let result = timestamps_insert(&timestamps)
        .build()
        .execute(&mut *conn)
        .await;
    match result {
        Ok(_) => {
            for QueuedTimestamp { ts, now, reply } in timestamps {
                let _ = reply.send(Ok(ts.recorded(now)));
            }
            Ok(())
        }
        Err(e) if is_unique_violation(&e) => Err(timestamps),
        Err(e) => {
            fail_timestamps(timestamps, &e.to_string());
            Ok(())
        }
    }
}

/// The multi-row INSERT of `chunk`.
fn timestamps_insert(chunk: &[QueuedTimestamp]) -> sqlx::QueryBuilder<sqlx::Sqlite> {
    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO timestamps (serial, gen_time_micros, policy, hash_algorithm, \
         message_imprint, nonce, token_sha256, tsa_key, created_at) ",
    );
    insert.push_values(chunk, |mut row, q| {
        row.push_bind(&q.ts.serial)
            .push_bind(q.ts.gen_time_micros)
            .push_bind(&q.ts.policy)
            .push_bind(&q.ts.hash_algorithm)
            .push_bind(&q.ts.message_imprint)
            .push_bind(&q.ts.nonce)
            .push_bind(&q.ts.token_sha256)
            .push_bind(&q.ts.tsa_key)
            .push_bind(q.now);
    });
    insert
}

fn fail_timestamps(timestamps: impl IntoIterator<Item = QueuedTimestamp>, detail: &str) {
    fail_all(timestamps.into_iter().map(Write::Timestamp), detail);
}

/// How a written row is answered once its batch's fate is known: with `result` if the batch
/// committed (or `result` is the row's own refusal), else with why nothing was stored.
fn answer_with<R: Send + 'static>(
    operation: &'static str,
    reply: oneshot::Sender<Result<R, StoreError>>,
    result: Result<R, StoreError>,
) -> Answer {
    Box::new(move |commit: Result<(), &str>| {
        let result = match (commit, result) {
            (Ok(()), result) | (Err(_), result @ Err(_)) => result,
            (Err(detail), Ok(_)) => Err(unavailable(operation, detail)),
        };
        // The caller may have gone away; the outcome stands either way.
        let _ = reply.send(result);
    })
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

    pub(super) type Reply = oneshot::Receiver<Result<i64, StoreError>>;

    /// Runs `writes` as one batch on a connection of the store's write pool.
    pub(super) async fn batch(
        store: &SqliteStore,
        head: &mut Option<AuditHead>,
        writes: Vec<Write>,
    ) {
        let mut conn = store.pool().acquire().await.expect("connection");
        run_batch(&mut conn, &store.clock, head, writes).await;
    }

    /// A job running `run`, and where its answer comes.
    pub(super) fn make_job<F>(run: F) -> (Box<dyn WriteJob>, Reply)
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

    fn jobs<const N: usize>(jobs: [Box<dyn WriteJob>; N]) -> Vec<Write> {
        jobs.into_iter().map(Write::Job).collect()
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
        batch(&store, &mut None, jobs([a, b, c])).await;
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
        batch(&store, &mut None, jobs([a, b, c])).await;
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
        batch(&store, &mut None, jobs([d])).await;
        assert!(rd.await.expect("answered").is_ok());
        assert_eq!(names(&store).await, ["d"]);
    }
}

#[cfg(test)]
mod row_batch_tests {
    //! Audit records and timestamp serials written as rows of a batch, beside ordinary jobs.

    use kyso_clock::ManualClock;

    use super::group_commit_tests::{Reply, batch, make_job};
    use super::*;
    use crate::Store;
    use crate::audit::verify_chain;

    type AuditReply = oneshot::Receiver<Result<AuditRecord, StoreError>>;
    type TimestampReply = oneshot::Receiver<Result<TimestampRecord, StoreError>>;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("kyso.db").display());
        let store = SqliteStore::open(&url, ManualClock::at_unix(1_000).shared())
            .await
            .expect("open");
        (dir, store)
    }

    fn audit(action: &str) -> (Write, AuditReply) {
        release(action, None)
    }

    /// An audit record that releases a signature authorised at `epoch`.
    fn release(action: &str, epoch: Option<i64>) -> (Write, AuditReply) {
        let (reply, answer) = oneshot::channel();
        let event = NewAuditEvent {
            actor: "client:1".into(),
            action: action.into(),
            target: "key:k".into(),
            outcome: AuditOutcome::Success,
            details: serde_json::json!({ "n": action }),
        };
        let details = crate::validate::audit_event(&event).expect("valid event");
        let write = Write::Audit(QueuedAudit {
            event,
            details,
            authorised: epoch.map(AuthorisationEpoch),
            reply,
        });
        (write, answer)
    }

    fn timestamp(serial: u8) -> (Write, TimestampReply) {
        let (reply, answer) = oneshot::channel();
        let ts = NewTimestamp {
            serial: vec![0x40, serial],
            gen_time_micros: 1_000_000_123,
            policy: "1.3.6.1.4.1.32473.3161.1".into(),
            hash_algorithm: "sha256".into(),
            message_imprint: vec![serial; 32],
            nonce: None,
            token_sha256: vec![0xcd; 32],
            tsa_key: "kyso-tsa".into(),
        };
        let write = Write::Timestamp(QueuedTimestamp {
            ts,
            now: 1_000,
            reply,
        });
        (write, answer)
    }

    /// A job that appends an audit record itself (as issuance does, inside its own statements),
    /// then fails with `error` if given.
    fn job_with_audit(clock: SharedClock, error: Option<StoreError>) -> (Write, Reply) {
        job_of(move |conn| {
            Box::pin(async move {
                let event = NewAuditEvent {
                    actor: "cli".into(),
                    action: "job".into(),
                    target: "staff:1".into(),
                    outcome: AuditOutcome::Success,
                    details: serde_json::json!({}),
                };
                let record =
                    SqliteStore::append_audit_on(conn, &clock, event, "{}".into(), "test").await?;
                match error {
                    Some(e) => Err(e),
                    None => Ok(record.seq),
                }
            })
        })
    }

    fn job_of<F>(run: F) -> (Write, Reply)
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64, StoreError>>
            + Send
            + 'static,
    {
        let (job, answer) = make_job(run);
        (Write::Job(job), answer)
    }

    async fn chain(store: &SqliteStore) -> Vec<AuditRecord> {
        store.list_audit(1, 1_000).await.expect("list audit")
    }

    #[tokio::test]
    async fn rows_and_jobs_of_one_batch_form_one_chain_in_queue_order() {
        let (_dir, store) = store().await;
        let mut head = None;
        let (a, ra) = audit("a");
        let (b, rb) = audit("b");
        let (t1, rt1) = timestamp(1);
        let (job, rjob) = job_with_audit(store.clock.clone(), None);
        let (c, rc) = audit("c");
        let (t2, rt2) = timestamp(2);
        batch(&store, &mut head, vec![a, t1, b, job, c, t2]).await;
        let seqs = [
            ra.await.expect("answered").expect("a").seq,
            rb.await.expect("answered").expect("b").seq,
            rjob.await.expect("answered").expect("job"),
            rc.await.expect("answered").expect("c").seq,
        ];
        // The job reads the chain head after a and b were written, and c comes after it.
        assert_eq!(seqs, [1, 2, 3, 4]);
        let records = chain(&store).await;
        let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["a", "b", "job", "c"]);
        assert_eq!(verify_chain(&records), Ok(()));
        assert_eq!(rt1.await.expect("answered").expect("t1").serial, [0x40, 1]);
        assert_eq!(rt2.await.expect("answered").expect("t2").serial, [0x40, 2]);
        assert_eq!(store.count_timestamps().await.expect("count"), 2);

        // A later batch goes on from the stored head.
        let (d, rd) = audit("d");
        batch(&store, &mut head, vec![d]).await;
        assert_eq!(rd.await.expect("answered").expect("d").seq, 5);
        assert_eq!(verify_chain(&chain(&store).await), Ok(()));
    }

    #[tokio::test]
    async fn a_duplicate_serial_is_refused_alone() {
        let (_dir, store) = store().await;
        let mut head = None;
        let (t1, rt1) = timestamp(1);
        batch(&store, &mut head, vec![t1]).await;
        rt1.await.expect("answered").expect("first");
        // 1 again (taken in the ledger), 3 twice in the same batch.
        let (again, r_again) = timestamp(1);
        let (t3, rt3) = timestamp(3);
        let (t3_twice, rt3_twice) = timestamp(3);
        let (t4, rt4) = timestamp(4);
        let (a, ra) = audit("a");
        batch(&store, &mut head, vec![again, t3, a, t3_twice, t4]).await;
        let code = |r: Result<TimestampRecord, StoreError>| r.expect_err("refused").code();
        assert_eq!(code(r_again.await.expect("answered")), "duplicate_serial");
        assert_eq!(code(rt3_twice.await.expect("answered")), "duplicate_serial");
        rt3.await.expect("answered").expect("3 once");
        rt4.await.expect("answered").expect("4");
        ra.await
            .expect("answered")
            .expect("the audit record stands");
        assert_eq!(store.count_timestamps().await.expect("count"), 3);
    }

    #[tokio::test]
    async fn a_broken_job_fails_the_rows_of_its_batch_too() {
        let (_dir, store) = store().await;
        let mut head = None;
        let (a, ra) = audit("a");
        let (t1, rt1) = timestamp(1);
        let corrupt = StoreError::Corrupt {
            what: "test",
            detail: "after a write".into(),
        };
        let (job, rjob) = job_with_audit(store.clock.clone(), Some(corrupt));
        let (b, rb) = audit("b");
        let (t2, rt2) = timestamp(2);
        batch(&store, &mut head, vec![a, t1, job, b, t2]).await;
        assert_eq!(
            rjob.await.expect("answered").expect_err("own error").code(),
            "store_corrupt"
        );
        for code in [
            ra.await
                .expect("answered")
                .map(|_| ())
                .expect_err("rolled back")
                .code(),
            rb.await
                .expect("answered")
                .map(|_| ())
                .expect_err("not run")
                .code(),
            rt1.await
                .expect("answered")
                .map(|_| ())
                .expect_err("rolled back")
                .code(),
            rt2.await
                .expect("answered")
                .map(|_| ())
                .expect_err("not run")
                .code(),
        ] {
            assert_eq!(code, "store_unavailable");
        }
        assert!(
            chain(&store).await.is_empty(),
            "nothing half-done is committed"
        );
        assert_eq!(store.count_timestamps().await.expect("count"), 0);
        // The chain starts afresh from the untouched head.
        let (c, rc) = audit("c");
        batch(&store, &mut head, vec![c]).await;
        assert_eq!(rc.await.expect("answered").expect("c").seq, 1);
    }

    #[tokio::test]
    async fn many_rows_span_several_inserts() {
        let (_dir, store) = store().await;
        let mut head = None;
        let mut writes = Vec::new();
        let mut replies = Vec::new();
        for i in 0..(ROWS_PER_INSERT * 2 + 3) {
            let (w, r) = audit(&format!("a{i}"));
            writes.push(w);
            replies.push(r);
        }
        batch(&store, &mut head, writes).await;
        for (i, reply) in replies.into_iter().enumerate() {
            let seq = reply.await.expect("answered").expect("appended").seq;
            assert_eq!(seq, i as i64 + 1);
        }
        let records = chain(&store).await;
        assert_eq!(records.len(), ROWS_PER_INSERT * 2 + 3);
        assert_eq!(verify_chain(&records), Ok(()));
    }

    #[tokio::test]
    async fn an_append_by_another_writer_is_noticed_and_chained_after() {
        let (_dir, store) = store().await;
        let mut head = None;
        let (a, ra) = audit("a");
        batch(&store, &mut head, vec![a]).await;
        assert_eq!(ra.await.expect("answered").expect("a").seq, 1);
        assert_eq!(head.map(|h| h.seq), Some(1), "the writer notes its head");
        // Another writer (here the store's own, standing for the CLI in another process)
        // appends twice: this writer's noted head is now stale.
        for action in ["other-1", "other-2"] {
            store
                .append_audit(&NewAuditEvent {
                    actor: "cli".into(),
                    action: action.into(),
                    target: "-".into(),
                    outcome: AuditOutcome::Success,
                    details: serde_json::json!({}),
                })
                .await
                .expect("other append");
        }
        // Alone (one statement, no transaction) and beside a serial (in a transaction).
        let (b, rb) = audit("b");
        batch(&store, &mut head, vec![b]).await;
        assert_eq!(rb.await.expect("answered").expect("b").seq, 4);
        store
            .append_audit(&NewAuditEvent {
                actor: "cli".into(),
                action: "other-3".into(),
                target: "-".into(),
                outcome: AuditOutcome::Success,
                details: serde_json::json!({}),
            })
            .await
            .expect("other append");
        let (c, rc) = audit("c");
        let (t1, rt1) = timestamp(1);
        batch(&store, &mut head, vec![c, t1]).await;
        assert_eq!(rc.await.expect("answered").expect("c").seq, 6);
        rt1.await.expect("answered").expect("t1");
        let records = chain(&store).await;
        let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["a", "other-1", "other-2", "b", "other-3", "c"]);
        assert_eq!(verify_chain(&records), Ok(()));
    }

    #[tokio::test]
    async fn a_batch_of_serials_alone_with_a_duplicate_is_retried_row_by_row() {
        let (_dir, store) = store().await;
        let mut head = None;
        let (t1, rt1) = timestamp(1);
        let (t2, rt2) = timestamp(2);
        batch(&store, &mut head, vec![t1, t2]).await;
        rt1.await.expect("answered").expect("1");
        rt2.await.expect("answered").expect("2");
        let (t2_again, rt2_again) = timestamp(2);
        let (t3, rt3) = timestamp(3);
        batch(&store, &mut head, vec![t3, t2_again]).await;
        rt3.await.expect("answered").expect("3");
        assert_eq!(
            rt2_again
                .await
                .expect("answered")
                .expect_err("refused")
                .code(),
            "duplicate_serial"
        );
        assert_eq!(store.count_timestamps().await.expect("count"), 3);
    }

    /// A client holding a grant of `key:k`, so that withdrawals have something to withdraw.
    async fn granted_client(store: &SqliteStore) -> i64 {
        let client = store
            .create_api_client(&NewApiClient {
                name: "one-stop shop".into(),
                role: ClientRole::Client,
                key_hash: vec![0xa1; 32],
                key_prefix: "kyso_a1a1".into(),
            })
            .await
            .expect("client");
        store.grant_key(client.id, "k").await.expect("grant");
        client.id
    }

    async fn epoch(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT value FROM authorisation_epoch WHERE id = 1")
            .fetch_one(store.pool())
            .await
            .expect("epoch")
    }

    fn refused_epochs(answer: Result<AuditRecord, StoreError>) -> (i64, i64) {
        match answer {
            Err(StoreError::AuthorisationChanged { expected, current }) => (expected, current),
            other => panic!("expected AuthorisationChanged, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn releases_at_the_current_epoch_are_written_in_one_statement() {
        let (_dir, store) = store().await;
        granted_client(&store).await;
        let now = epoch(&store).await;
        let mut head = None;
        let (a, ra) = release("a", Some(now));
        let (b, rb) = audit("b");
        let (c, rc) = release("c", Some(now));
        batch(&store, &mut head, vec![a, b, c]).await;
        let seqs = [
            ra.await.expect("answered").expect("a").seq,
            rb.await.expect("answered").expect("b").seq,
            rc.await.expect("answered").expect("c").seq,
        ];
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(verify_chain(&chain(&store).await), Ok(()));
    }

    #[tokio::test]
    async fn a_withdrawal_refuses_only_the_releases_read_before_it() {
        let (_dir, store) = store().await;
        let client = granted_client(&store).await;
        let before = epoch(&store).await;
        assert!(store.revoke_key_grant(client, "k").await.expect("withdraw"));
        let after = epoch(&store).await;
        assert_eq!(after, before + 1);
        let mut head = None;
        // All of one stale epoch: the one conditional INSERT writes nothing, and the batch is
        // judged again under the write lock.
        let (a, ra) = release("a", Some(before));
        let (b, rb) = release("b", Some(before));
        batch(&store, &mut head, vec![a, b]).await;
        assert_eq!(refused_epochs(ra.await.expect("answered")), (before, after));
        assert_eq!(refused_epochs(rb.await.expect("answered")), (before, after));
        assert!(chain(&store).await.is_empty());
        // Mixed epochs, with records bound to none: only the stale release is refused, and the
        // chain goes on from where it stood.
        let (c, rc) = release("c", Some(before));
        let (d, rd) = release("d", Some(after));
        let (e, re) = audit("e");
        batch(&store, &mut head, vec![c, d, e]).await;
        assert_eq!(refused_epochs(rc.await.expect("answered")), (before, after));
        assert_eq!(rd.await.expect("answered").expect("d").seq, 1);
        assert_eq!(re.await.expect("answered").expect("e").seq, 2);
        let records = chain(&store).await;
        let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["d", "e"]);
        assert_eq!(verify_chain(&records), Ok(()));
    }

    #[tokio::test]
    async fn a_withdrawal_in_the_same_batch_counts_from_its_place_in_the_queue() {
        let (_dir, store) = store().await;
        let client = granted_client(&store).await;
        let now = epoch(&store).await;
        let mut head = None;
        let (a, ra) = release("a", Some(now));
        let (withdraw, rwithdraw) = job_of(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE api_clients SET disabled_at = 7 WHERE id = $1")
                    .bind(client)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db("test"))?;
                Ok(done.rows_affected() as i64)
            })
        });
        let (b, rb) = release("b", Some(now));
        batch(&store, &mut head, vec![a, withdraw, b]).await;
        assert_eq!(ra.await.expect("answered").expect("a").seq, 1);
        assert_eq!(rwithdraw.await.expect("answered").expect("withdraw"), 1);
        assert_eq!(refused_epochs(rb.await.expect("answered")), (now, now + 1));
        assert_eq!(chain(&store).await.len(), 1);
    }

    #[tokio::test]
    async fn only_withdrawals_advance_the_epoch() {
        let (_dir, store) = store().await;
        let mut expected = epoch(&store).await;
        // Additions and a key's use leave it alone.
        let client = granted_client(&store).await;
        store.touch_api_client(client).await.expect("touch");
        store.grant_key(client, "other").await.expect("grant");
        assert_eq!(epoch(&store).await, expected);
        // Each withdrawal advances it once.
        assert!(
            store
                .revoke_key_grant(client, "other")
                .await
                .expect("withdraw")
        );
        expected += 1;
        assert_eq!(epoch(&store).await, expected);
        // Withdrawing a grant that is not there changes nothing.
        assert!(
            !store
                .revoke_key_grant(client, "other")
                .await
                .expect("withdraw")
        );
        assert_eq!(epoch(&store).await, expected);
        store.disable_api_client(client).await.expect("disable");
        expected += 1;
        assert_eq!(epoch(&store).await, expected);
        // Disabling again (COALESCE keeps the first time) changes nothing.
        store
            .disable_api_client(client)
            .await
            .expect("disable again");
        assert_eq!(epoch(&store).await, expected);
    }
}
