//! Loading and inserting many rows with the cryptography spread over several threads.
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
//! For writing, [`encrypt_chunks`] encrypts the next chunks of models on helper threads while the
//! calling thread inserts the current one, and [`encrypt_all`] encrypts a slice of models into
//! records (for diesel-async or any other use of the records).
//!
//! Fewer than 512 rows are handled inline: no thread is started.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

use diesel::connection::{DefaultLoadingMode, LoadConnection};
use diesel::dsl::{AsSelect, Select};
use diesel::query_builder::QueryId;
use diesel::query_dsl::methods::{LoadQuery, SelectDsl};
use diesel::{QueryResult, RunQueryDsl, Selectable, SelectableHelper};

use crate::__private::Row;
use crate::Error;

/// Results smaller than this are decrypted inline, without starting a thread.
const INLINE: usize = 512;
/// Rows handed to a thread at a time: small, so decryption starts early and the threads finish
/// together.
const BATCH: usize = 64;

/// Implemented by `#[derive(Encrypted)]`: a model, its stored record and how to decrypt it.
pub trait Model: Sized {
    /// The hidden record: Diesel's `Queryable` + `Selectable` row of the table with the stored
    /// (encrypted) values. The same type the rotation engine loads (`Rotate` in [`crate::rotate`]).
    type Record;
    /// The model's name, as errors show it.
    const NAME: &'static str;
    /// The resource whose keys encrypt it.
    const RESOURCE: &'static str;

    /// The keys in effect on this thread and the model's resource chain (its fallback
    /// resource's, or none for a flagged model whose resources are not configured).
    ///
    /// # Errors
    /// [`Error::NoKeyring`], [`Error::Resource`].
    fn keys() -> Result<Row, Error>;

    /// Decrypts one record with the keys of [`Model::keys`].
    ///
    /// # Errors
    /// [`Error::Crypto`] for a value the keyring cannot read (with the model and field named),
    /// [`Error::InvalidUtf8`], [`Error::Json`].
    fn decrypt(record: Self::Record, keys: &Row) -> Result<Self, Error>;

    /// Encrypts the model into its record with `keys` (the keys in effect and the resource's
    /// keyring, or why there are none). A value that cannot be encrypted is carried in the
    /// record and reported when the record is bound, as when inserting the model itself.
    fn encrypt(&self, keys: &Result<Row, Error>) -> Self::Record;
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
    queue.push_batches(0, records);
    queue.close();
    run::<M, std::convert::Infallible>(&queue, &ring, helpers, || Ok(())).map_err(|e| match e {
        RunError::Decrypt(e) => e,
        RunError::Query(never) => match never {},
    })
}

/// `load_decrypted` for every Diesel query that can load a model's records.
pub trait LoadDecrypted<Conn>: Sized {
    /// Loads the rows of `M` that the query selects, decrypting on several threads while the
    /// rows are read. The query's select clause is replaced by the model's columns, as
    /// `M::as_select()` would choose them.
    ///
    /// `users::table.order(users::id).load_decrypted::<User>(&mut conn)?`; a complete example
    /// is in the crate documentation, "Many rows: loading and inserting".
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
        run(&queue, &ring, helpers, read).map_err(|e| match e {
            RunError::Query(e) => e,
            RunError::Decrypt(e) => failed(e),
        })
    }
}

impl<Q, Conn> LoadDecrypted<Conn> for Q {}

/// The keys of `M`'s rows, with the keys in effect on this thread.
fn ring<M: Model>() -> Result<Row, Error> {
    M::keys()
}

/// Threads to start beside the caller's: one per further core, at most three. Asked once:
/// `available_parallelism` reads the affinity mask and cgroup quota files on Linux.
fn helper_threads() -> usize {
    static HELPERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *HELPERS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .saturating_sub(1)
            .min(3)
    })
}

fn decrypt_batch<M: Model>(records: Vec<M::Record>, ring: &Row) -> Result<Vec<M>, Error> {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, index: usize, batch: Vec<R>) {
        self.lock().batches.push_back((index, batch));
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
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next batch; waits while the queue is open and empty; `None` once closed and empty.
    fn pop(&self) -> Option<(usize, Vec<R>)> {
        let mut state = self.lock();
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
    ring: &Row,
    helpers: usize,
    read: impl FnOnce() -> Result<(), Q>,
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
    let rows = done
        .iter()
        .map(|(_, batch)| batch.as_ref().map_or(0, Vec::len))
        .sum();
    let mut models = Vec::with_capacity(rows);
    for (_, batch) in done {
        models.extend(batch.map_err(RunError::Decrypt)?);
    }
    Ok(models)
}

/// The keys in effect on this thread and `M`'s keyring, or why there are none (carried into
/// the records, as when a model is inserted directly).
fn row_keys<M: Model>() -> Result<Row, Error> {
    M::keys()
}

/// Encrypts models into their stored records, on several threads when there are many; order
/// kept. Insert the records with `diesel::insert_into(table).values(&records)` (sync or
/// diesel-async); a value that could not be encrypted fails that insert, naming the field.
///
/// The keys are those in effect on the calling thread, also on the helper threads.
#[must_use]
pub fn encrypt_all<M>(models: &[M]) -> Vec<M::Record>
where
    M: Model + Sync,
    M::Record: Send,
{
    let keys = row_keys::<M>();
    let helpers = helper_threads();
    if helpers == 0 || models.len() < INLINE {
        return models.iter().map(|m| m.encrypt(&keys)).collect();
    }
    let per_thread = models.len().div_ceil(helpers + 1);
    std::thread::scope(|s| {
        let mut parts = models.chunks(per_thread);
        let mine = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .map(|part| {
                let keys = &keys;
                s.spawn(move || part.iter().map(|m| m.encrypt(keys)).collect::<Vec<_>>())
            })
            .collect();
        let mut records: Vec<M::Record> = mine.iter().map(|m| m.encrypt(&keys)).collect();
        records.reserve(models.len() - records.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => records.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        records
    })
}

/// Encrypts `models` in chunks of `chunk` and hands each chunk of records, in order, to `each`
/// (typically a batch insert), encrypting the next chunks on helper threads while `each` runs.
/// Stops at the first error of `each` and returns it; chunks after it are not handed over.
///
/// The keys are those in effect on the calling thread, also on the helper threads.
///
/// # Errors
/// The first error `each` returns.
///
/// # Panics
/// If `chunk` is 0.
pub fn encrypt_chunks<M, E>(
    models: &[M],
    chunk: usize,
    mut each: impl FnMut(&[M::Record]) -> Result<(), E>,
) -> Result<(), E>
where
    M: Model + Sync,
    M::Record: Send,
{
    assert!(chunk > 0, "encrypt_chunks needs a chunk size above 0");
    let keys = row_keys::<M>();
    let seal = |part: &[M]| part.iter().map(|m| m.encrypt(&keys)).collect::<Vec<_>>();
    let helpers = helper_threads();
    if helpers == 0 || models.len() < INLINE {
        return models.chunks(chunk).try_for_each(|part| each(&seal(part)));
    }
    let chunks = models.len().div_ceil(chunk);
    let part = |index: usize| &models[index * chunk..models.len().min((index + 1) * chunk)];
    let line = Line::new(chunks, helpers + 2);
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(|| {
                while let Some(index) = line.claim_ahead() {
                    line.done(index, seal(part(index)));
                }
            });
        }
        // Whatever happens below, let the helpers go.
        let _stop = StopOnDrop(&line);
        for index in 0..chunks {
            // Take the chunk when it is ready; until then encrypt the next unclaimed one here
            // rather than wait, so the threads share the work whatever its cost.
            let records = loop {
                match line.take_or_claim(index) {
                    Next::Ready(records) => break records,
                    Next::Claimed(claimed) => line.done(claimed, seal(part(claimed))),
                }
            };
            each(&records)?;
        }
        Ok(())
    })
}

/// Chunks of an `encrypt_chunks` run: claimed in order by whichever thread is free, at most
/// `ahead` chunks beyond the one being inserted, and taken in order by the inserting thread.
struct Line<R> {
    state: Mutex<LineState<R>>,
    changed: Condvar,
    chunks: usize,
    ahead: usize,
}

struct LineState<R> {
    /// The next chunk nobody has claimed.
    next: usize,
    /// The chunk the inserting thread waits for.
    taking: usize,
    /// Encrypted chunks not yet taken, by index.
    done: std::collections::BTreeMap<usize, Vec<R>>,
    stopped: bool,
}

enum Next<R> {
    Ready(Vec<R>),
    Claimed(usize),
}

impl<R> Line<R> {
    fn new(chunks: usize, ahead: usize) -> Self {
        Self {
            state: Mutex::new(LineState {
                next: 0,
                taking: 0,
                done: std::collections::BTreeMap::new(),
                stopped: false,
            }),
            changed: Condvar::new(),
            chunks,
            ahead,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LineState<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For a helper: the next chunk to encrypt, waiting while it would be too far ahead;
    /// `None` when there is none left or the run stopped.
    fn claim_ahead(&self) -> Option<usize> {
        let mut state = self.lock();
        loop {
            if state.stopped || state.next >= self.chunks {
                return None;
            }
            if state.next < state.taking + self.ahead {
                state.next += 1;
                return Some(state.next - 1);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn done(&self, index: usize, records: Vec<R>) {
        self.lock().done.insert(index, records);
        self.changed.notify_all();
    }

    /// For the inserting thread: chunk `index` if it is ready, else a chunk to encrypt itself
    /// (`index` when nobody claimed it yet), else waits.
    fn take_or_claim(&self, index: usize) -> Next<R> {
        let mut state = self.lock();
        state.taking = index;
        loop {
            if let Some(records) = state.done.remove(&index) {
                drop(state);
                // Room for the helpers to claim one more.
                self.changed.notify_all();
                return Next::Ready(records);
            }
            if state.next < self.chunks && state.next <= index + self.ahead {
                state.next += 1;
                return Next::Claimed(state.next - 1);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Stops the helpers of a `Line` when the inserting thread is done or fails.
struct StopOnDrop<'a, R>(&'a Line<R>);

impl<R> Drop for StopOnDrop<'_, R> {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.changed.notify_all();
    }
}
