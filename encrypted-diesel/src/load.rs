//! Loading many rows with the decryption spread over several threads.
//!
//! `query.load::<User>(conn)` decrypts each row on the calling thread as Diesel builds it, so a
//! large load costs the query plus every value's decryption, one after the other.
//! [`LoadDecrypted::load_decrypted`] reads the same rows as their stored records and hands them,
//! in batches, to helper threads that decrypt while the calling thread goes on reading; when
//! reading is done the calling thread decrypts too. Rows come back in query order; the first
//! failing row (in query order) is the error, and then no model is returned.
//!
//! [`decrypt_all`] does the decryption part for records loaded some other way (diesel-async:
//! `load::<<User as Model>::Record>` then `decrypt_all`).
//!
//! Small results (under 512 rows) are decrypted inline: no thread is started.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

use diesel::connection::{DefaultLoadingMode, LoadConnection};
use diesel::dsl::{AsSelect, Select};
use diesel::query_builder::QueryId;
use diesel::query_dsl::methods::{LoadQuery, SelectDsl};
use diesel::{QueryResult, RunQueryDsl, Selectable, SelectableHelper};
use encrypted_core::ResourceKeyring;

use crate::Error;

/// Results smaller than this are decrypted inline, without starting a thread.
const INLINE: usize = 512;
/// Rows handed to a thread at a time: small, so decryption starts early and the threads finish
/// together.
const BATCH: usize = 64;

/// Implemented by `#[derive(Encrypted)]`: a model, its stored record and how to decrypt it.
pub trait Model: Sized {
    /// The hidden record: Diesel's `Queryable` + `Selectable` row of the table with the stored
    /// (encrypted) values. The same type as [`Rewrap::Record`](crate::Rewrap::Record).
    type Record;
    /// The model's name, as errors show it.
    const NAME: &'static str;
    /// The resource whose keys encrypt it.
    const RESOURCE: &'static str;

    /// Decrypts one record with the resource's keyring.
    ///
    /// # Errors
    /// [`Error::Crypto`] for a value the keyring cannot read (with the model and field named),
    /// [`Error::InvalidUtf8`], [`Error::Json`].
    fn decrypt(record: Self::Record, ring: &ResourceKeyring) -> Result<Self, Error>;
}

/// Decrypts loaded records into models, on several threads when there are many; order kept.
///
/// The keys are those in effect on the calling thread ([`install`](crate::install)ed or
/// [`scope`](crate::scope)d), also on the helper threads.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::Resource`], or the first record (in order) that does not
/// decrypt, as [`Model::decrypt`].
pub fn decrypt_all<M>(records: Vec<M::Record>) -> Result<Vec<M>, Error>
where
    M: Model + Send,
    M::Record: Send,
{
    let ring = ring::<M>()?;
    let helpers = helper_threads();
    if helpers == 0 || records.len() < INLINE {
        return decrypt_batch(records, &ring);
    }
    let queue = Queue::new();
    let total = records.len();
    queue.push_batches(0, records);
    queue.close();
    run::<M, std::convert::Infallible>(&queue, &ring, helpers, || Ok(()), total).map_err(
        |e| match e {
            RunError::Decrypt(e) => e,
            RunError::Query(never) => match never {},
        },
    )
}

/// `load_decrypted` for every Diesel query that can load a model's records.
pub trait LoadDecrypted<Conn>: Sized {
    /// Loads the rows of `M` that the query selects, decrypting on several threads while the
    /// rows are read (see the [module documentation](self)). The query's select clause is
    /// replaced by the model's columns, as `M::as_select()` would choose them.
    ///
    /// `users::table.order(users::id).load_decrypted::<User>(&mut conn)?` (a complete example
    /// is in the crate documentation, "Loading many rows").
    ///
    /// # Errors
    /// The query's error, or a row that does not decrypt, as `load` reports them (a
    /// `DeserializationError` holding the [`Error`]).
    fn load_decrypted<'query, M>(self, conn: &mut Conn) -> QueryResult<Vec<M>>
    where
        Conn: LoadConnection<DefaultLoadingMode>,
        M: Model + Send,
        M::Record: Selectable<Conn::Backend> + Send,
        <M::Record as Selectable<Conn::Backend>>::SelectExpression: QueryId,
        Self: SelectDsl<AsSelect<M::Record, Conn::Backend>>,
        Select<Self, AsSelect<M::Record, Conn::Backend>>:
            LoadQuery<'query, Conn, M::Record, DefaultLoadingMode> + RunQueryDsl<Conn> + 'query;
}

impl<Q, Conn> LoadDecrypted<Conn> for Q {
    fn load_decrypted<'query, M>(self, conn: &mut Conn) -> QueryResult<Vec<M>>
    where
        Conn: LoadConnection<DefaultLoadingMode>,
        M: Model + Send,
        M::Record: Selectable<Conn::Backend> + Send,
        <M::Record as Selectable<Conn::Backend>>::SelectExpression: QueryId,
        Self: SelectDsl<AsSelect<M::Record, Conn::Backend>>,
        Select<Self, AsSelect<M::Record, Conn::Backend>>:
            LoadQuery<'query, Conn, M::Record, DefaultLoadingMode> + RunQueryDsl<Conn> + 'query,
    {
        let failed = |e: Error| diesel::result::Error::DeserializationError(Box::new(e));
        let ring = ring::<M>().map_err(failed)?;
        let mut rows = self
            .select(M::Record::as_select())
            .load_iter::<M::Record, DefaultLoadingMode>(conn)?
            // Fused: SQLite's iterator runs the statement again when called past its end.
            .fuse();
        let first: Vec<M::Record> = rows.by_ref().take(INLINE).collect::<QueryResult<_>>()?;
        let helpers = helper_threads();
        if first.len() < INLINE || helpers == 0 {
            let mut models = decrypt_batch(first, &ring).map_err(failed)?;
            for row in rows {
                models.push(M::decrypt(row?, &ring).map_err(failed)?);
            }
            return Ok(models);
        }
        let queue = Queue::new();
        let mut index = queue.push_batches(0, first);
        let read = || -> QueryResult<()> {
            let mut batch = Vec::with_capacity(BATCH);
            let result = (|| {
                for row in rows.by_ref() {
                    batch.push(row?);
                    if batch.len() == BATCH {
                        queue.push(
                            index,
                            std::mem::replace(&mut batch, Vec::with_capacity(BATCH)),
                        );
                        index += 1;
                    }
                }
                Ok(())
            })();
            if !batch.is_empty() {
                queue.push(index, batch);
            }
            queue.close();
            result
        };
        run(&queue, &ring, helpers, read, 0).map_err(|e| match e {
            RunError::Query(e) => e,
            RunError::Decrypt(e) => failed(e),
        })
    }
}

/// The keyring of `M`'s resource, with the keys in effect on this thread.
fn ring<M: Model>() -> Result<std::sync::Arc<ResourceKeyring>, Error> {
    crate::keys::current()?.resource(M::NAME, M::RESOURCE)
}

/// Threads to start beside the caller's: one per further core, at most three.
fn helper_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .saturating_sub(1)
        .min(3)
}

fn decrypt_batch<M: Model>(
    records: Vec<M::Record>,
    ring: &ResourceKeyring,
) -> Result<Vec<M>, Error> {
    records.into_iter().map(|r| M::decrypt(r, ring)).collect()
}

/// Batches waiting for a thread, in order; closed once the reader has queued the last one.
struct Queue<R> {
    state: Mutex<Waiting<R>>,
    ready: Condvar,
}

/// The batches queued (with their index) and whether the reader is done.
struct Waiting<R> {
    batches: VecDeque<(usize, Vec<R>)>,
    closed: bool,
}

impl<R> Queue<R> {
    fn new() -> Self {
        Self {
            state: Mutex::new(Waiting {
                batches: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn push(&self, index: usize, batch: Vec<R>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.batches.push_back((index, batch));
        drop(state);
        self.ready.notify_one();
    }

    /// Queues `records` in batches numbered from `index`; returns the next number.
    fn push_batches(&self, mut index: usize, records: Vec<R>) -> usize {
        let mut records = records.into_iter();
        loop {
            let batch: Vec<R> = records.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                return index;
            }
            self.push(index, batch);
            index += 1;
        }
    }

    fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.ready.notify_all();
    }

    /// The next batch; waits while the queue is open and empty; `None` once closed and empty.
    fn pop(&self) -> Option<(usize, Vec<R>)> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(batch) = state.batches.pop_front() {
                return Some(batch);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

enum RunError<Q> {
    Query(Q),
    Decrypt(Error),
}

/// Decrypted batches by index.
type Done<M> = Vec<(usize, Result<Vec<M>, Error>)>;

/// Runs `read` (which fills and closes `queue`) on this thread while `helpers` threads decrypt
/// batches; then this thread decrypts what is left. Results are put back in batch order.
fn run<M, Q>(
    queue: &Queue<M::Record>,
    ring: &ResourceKeyring,
    helpers: usize,
    read: impl FnOnce() -> Result<(), Q>,
    capacity: usize,
) -> Result<Vec<M>, RunError<Q>>
where
    M: Model + Send,
    M::Record: Send,
{
    let work = || {
        let mut done: Done<M> = Vec::new();
        while let Some((index, batch)) = queue.pop() {
            done.push((index, decrypt_batch(batch, ring)));
        }
        done
    };
    let (read, mut done) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..helpers).map(|_| s.spawn(work)).collect();
        let read = read();
        let mut done = work();
        for handle in handles {
            // A helper only panics if `M::decrypt` does; pass that on as is.
            match handle.join() {
                Ok(more) => done.extend(more),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        (read, done)
    });
    read.map_err(RunError::Query)?;
    done.sort_unstable_by_key(|(index, _)| *index);
    let mut models = Vec::with_capacity(capacity.max(done.len() * BATCH));
    for (_, batch) in done {
        models.extend(batch.map_err(RunError::Decrypt)?);
    }
    Ok(models)
}
