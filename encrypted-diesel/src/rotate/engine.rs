//! The engine: judging rows (backend-independent) and the sync driver.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use encrypted_core::ProviderKind;

use super::{
    Drift, Hashed, Lock, Locks, NewValue, Options, Progress, Rate, RewrapSummary, Rotate, Session,
    Stored, Table, TableStatus, Unreadable, ValueState, Verification, label, table_name,
};
use crate::__private::{self as p, Route, RowKeys, Spec};
use crate::{EncryptedList, EncryptedValue, Error, Keys};

/// The state of one hash column of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashState {
    /// Matches the value under the current lookup key.
    Ok,
    /// Matches under an older lookup key.
    Stale,
    /// Matches no active key: drift.
    Drift,
    /// The value could not be read: not checked.
    Unknown,
}

/// Everything learnt about one row.
pub(crate) struct Verdict<M: Rotate> {
    pub(crate) states: Vec<ValueState>,
    pub(crate) hashes: Vec<HashState>,
    /// The changeset, when the row is to be written.
    pub(crate) rewrite: Option<M::Rewrite>,
    /// A drifted hash is repaired by `rewrite`.
    pub(crate) repairs: bool,
    /// The row would be written by a rewrap (set whatever the purpose, for dry runs).
    pub(crate) needs: bool,
    /// The first unreadable value's column and error.
    pub(crate) unreadable: Option<(&'static str, Error)>,
}

/// The plaintext of one value, as far as it could be read.
enum Plain {
    Null,
    /// A list column holding JSON `null`: written back as it is.
    ListNull,
    One(Vec<u8>),
    List(Vec<Vec<u8>>),
    Unread,
}

/// What the judge does with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Count only (status, verify, dry runs).
    Inspect,
    /// Build the changesets of rows to write.
    Rewrap { repair: bool },
}

/// Reads one text or binary value.
fn read_value(
    spec: &Spec,
    value: &EncryptedValue,
    keys: &RowKeys,
    resource: &str,
    aad: &str,
    legacy: bool,
) -> (ValueState, Option<Vec<u8>>) {
    let ring = keys.ring.as_deref();
    if ring.is_none() && legacy {
        return (ValueState::NotConfigured, Some(value.raw().into_owned()));
    }
    match p::route(spec, value, ring, resource, legacy) {
        Ok(Route::Plain(bytes)) if bytes.is_empty() && spec.skip_empty && !legacy => {
            (ValueState::Empty, Some(Vec::new()))
        }
        Ok(Route::Plain(bytes)) => (ValueState::Plaintext, Some(bytes.into_owned())),
        Ok(Route::Decrypt(stored)) => {
            let Some(ring) = ring else {
                return (
                    ValueState::Undecryptable(spec.crypto(
                        encrypted_core::Error::ResourceNotConfigured {
                            resource: resource.to_owned(),
                        },
                    )),
                    None,
                );
            };
            match ring.decrypt(&stored, aad.as_bytes()) {
                Ok(d) if d.key.provider == ProviderKind::Identity => {
                    (ValueState::Plaintext, Some(d.plaintext))
                }
                Ok(d) if d.stale => (ValueState::Stale(d.key.clone()), Some(d.plaintext)),
                Ok(d) => (ValueState::Current(d.key.clone()), Some(d.plaintext)),
                Err(e) => (ValueState::Undecryptable(spec.crypto(e)), None),
            }
        }
        Err(e) => (ValueState::Undecryptable(e), None),
    }
}

/// The worse of two states (for a list's elements).
fn worse(a: ValueState, b: ValueState) -> ValueState {
    fn rank(s: &ValueState) -> u8 {
        match s {
            ValueState::Empty => 0,
            ValueState::Current(_) => 1,
            ValueState::Stale(_) => 2,
            ValueState::Plaintext => 3,
            ValueState::NotConfigured => 4,
            ValueState::Undecryptable(_) => 5,
        }
    }
    if rank(&b) > rank(&a) { b } else { a }
}

fn read_list(
    spec: &Spec,
    list: &EncryptedList,
    keys: &RowKeys,
    resource: &str,
    aad: &str,
    legacy: bool,
) -> (ValueState, Option<Vec<Vec<u8>>>) {
    let items = match p::list_items(spec, list) {
        Ok(items) => items,
        Err(e) => return (ValueState::Undecryptable(e), None),
    };
    let mut state = ValueState::Empty;
    let mut plain = Some(Vec::with_capacity(items.len()));
    for item in &items {
        let (s, bytes) = read_value(spec, item, keys, resource, aad, legacy);
        state = worse(state, s);
        match (bytes, &mut plain) {
            (Some(b), Some(all)) => all.push(b),
            _ => plain = None,
        }
    }
    (state, plain)
}

/// Normalised input of a hash column from a value's plaintext.
fn hash_input<'a>(hashed: &Hashed, plain: &'a [u8]) -> Cow<'a, [u8]> {
    if !hashed.text {
        return Cow::Borrowed(plain);
    }
    match std::str::from_utf8(plain) {
        Ok(text) => match hashed.spec.normalize.apply(text) {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        },
        Err(_) => Cow::Borrowed(plain),
    }
}

/// Judges one row.
///
/// # Errors
/// [`Error::NoLookupKey`] for an HMAC column without lookup keys; [`Error::Crypto`] when
/// re-encrypting fails. An unreadable value is not an error: it is in the verdict.
pub(crate) fn judge_row<M: Rotate>(
    record: &M::Record,
    keys: &RowKeys,
    purpose: Purpose,
) -> Result<Verdict<M>, Error> {
    let legacy = M::FLAGGED && M::flag(record) == Some(false);
    let mut states = Vec::with_capacity(M::VALUES.len());
    let mut plains = Vec::with_capacity(M::VALUES.len());
    let mut unreadable = None;
    for (i, spec) in M::VALUES.iter().enumerate() {
        let aad = M::aad(record, i);
        let (state, plain) = match M::stored(record, i) {
            None => (ValueState::Empty, Plain::Null),
            Some(Stored::Value(v)) => {
                let (s, b) = read_value(spec, v, keys, M::RESOURCE, &aad, legacy);
                (s, b.map_or(Plain::Unread, Plain::One))
            }
            Some(Stored::List(l)) if l.is_null() => (ValueState::Empty, Plain::ListNull),
            Some(Stored::List(l)) => {
                let (s, b) = read_list(spec, l, keys, M::RESOURCE, &aad, legacy);
                (s, b.map_or(Plain::Unread, Plain::List))
            }
        };
        if let (ValueState::Undecryptable(e), None) = (&state, &unreadable) {
            unreadable = Some((spec.column, e.clone()));
        }
        states.push(state);
        plains.push(plain);
    }

    // Hash columns, recomputed from the plaintext.
    let mut hashes = Vec::with_capacity(M::HASHES.len());
    let mut new_hashes = Vec::with_capacity(M::HASHES.len());
    for (j, hashed) in M::HASHES.iter().enumerate() {
        let stored = M::stored_hash(record, j);
        let (state, new) = match &plains[hashed.value] {
            Plain::Null | Plain::ListNull => {
                let ok = stored.is_none_or(str::is_empty);
                (if ok { HashState::Ok } else { HashState::Drift }, None)
            }
            Plain::One(plain) => {
                let input = hash_input(hashed, plain);
                let candidates = hashed.spec.candidates(Some(&keys.keys), &input)?;
                let state = match candidates.iter().position(|c| Some(c.as_str()) == stored) {
                    Some(0) => HashState::Ok,
                    Some(_) => HashState::Stale,
                    None => HashState::Drift,
                };
                (state, candidates.into_iter().next())
            }
            Plain::List(_) | Plain::Unread => (HashState::Unknown, stored.map(str::to_owned)),
        };
        hashes.push(state);
        new_hashes.push((new, stored));
    }

    let unreadable_row = states
        .iter()
        .any(|s| matches!(s, ValueState::Undecryptable(_)));
    // Drift that a rewrap may repair: not in a hash column the contexts are built from.
    let drift = M::HASHES
        .iter()
        .zip(&hashes)
        .any(|(h, s)| *s == HashState::Drift && !h.in_aad);
    let needs = states
        .iter()
        .any(|s| matches!(s, ValueState::Stale(_) | ValueState::Plaintext))
        || hashes.contains(&HashState::Stale)
        || legacy;
    let repair = matches!(purpose, Purpose::Rewrap { repair: true });
    let mut verdict = Verdict {
        states,
        hashes,
        rewrite: None,
        repairs: false,
        needs: keys.ring.is_some() && !unreadable_row && (needs || repair && drift),
        unreadable,
    };
    if !verdict.needs || purpose == Purpose::Inspect {
        return Ok(verdict);
    }
    let row: Result<p::Row, Error> = Ok(keys.clone());
    let mut values = Vec::with_capacity(M::VALUES.len());
    for (i, (spec, plain)) in M::VALUES.iter().zip(&plains).enumerate() {
        let aad: Result<Cow<'_, str>, Error> = Ok(M::aad(record, i));
        values.push(match plain {
            Plain::Null => None,
            Plain::ListNull => Some(NewValue::List(EncryptedList::null())),
            Plain::One(bytes) => {
                let sealed = p::seal(spec, &row, Ok::<_, Error>(bytes.as_slice()), &aad);
                Some(NewValue::Value(sealed))
            }
            Plain::List(items) => {
                let items: Result<Vec<String>, Error> = items
                    .iter()
                    .map(|b| {
                        String::from_utf8(b.clone()).map_err(|_| Error::InvalidUtf8 {
                            model: spec.model,
                            field: spec.field,
                        })
                    })
                    .collect();
                let list = match items {
                    Ok(items) => p::seal_each(spec, &row, &items, &aad),
                    Err(e) => EncryptedList::failed(e),
                };
                Some(NewValue::List(list))
            }
            Plain::Unread => return Ok(verdict),
        });
    }
    let hashes_out = new_hashes
        .into_iter()
        .zip(verdict.hashes.iter().zip(M::HASHES))
        .map(|((new, stored), (state, hashed))| match state {
            // A hash the contexts are built from is never changed (the derive refuses `hmac`
            // ones in the template, so it cannot be stale).
            _ if hashed.in_aad => stored.map(str::to_owned),
            HashState::Drift if !repair => stored.map(str::to_owned),
            HashState::Unknown => stored.map(str::to_owned),
            _ => new,
        })
        .collect();
    verdict.repairs = repair && drift;
    verdict.rewrite = Some(M::rewrite(record, values, hashes_out));
    Ok(verdict)
}

/// The keys of a model's rows, with the keys in effect on this thread.
pub(crate) fn row_keys<M: Rotate>() -> Result<RowKeys, Error> {
    M::keys()
}

/// Threads for judging a batch when `jobs` batches are worked on at once.
fn judge_threads(jobs: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    (cores / jobs.max(1)).clamp(1, 4)
}

/// Judges `records` on up to `threads` threads (the database waits meanwhile, so its core is
/// free); each worker runs with the keys in scope on the calling thread.
pub(crate) fn judge_all<M>(
    records: &[M::Record],
    keys: &RowKeys,
    purpose: Purpose,
    threads: usize,
) -> Result<Vec<Verdict<M>>, Error>
where
    M: Rotate,
    M::Record: Sync,
{
    const MIN_PER_THREAD: usize = 128;
    let threads = threads.min(records.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return records
            .iter()
            .map(|r| judge_row::<M>(r, keys, purpose))
            .collect();
    }
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                let keys = keys.clone();
                scope.spawn(move || {
                    crate::with_keyring(Keys::clone(&keys.keys), || {
                        part.iter()
                            .map(|r| judge_row::<M>(r, &keys, purpose))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
            })
            .collect();
        let mut all = Vec::with_capacity(records.len());
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| Error::Storage("a rotation worker thread panicked".into()))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// Counts of one batch (or a whole run).
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) status: TableStatus,
    pub(crate) summary: RewrapSummary,
    pub(crate) verification: Verification,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        let (s, o) = (&mut self.status, &other.status);
        s.rows += o.rows;
        s.current += o.current;
        s.stale += o.stale;
        s.plaintext += o.plaintext;
        s.undecryptable += o.undecryptable;
        s.not_configured += o.not_configured;
        s.empty += o.empty;
        s.drifted += o.drifted;
        s.stale_lookup += o.stale_lookup;
        for (k, n) in &o.by_key {
            *s.by_key.entry(k.clone()).or_default() += n;
        }
        let (s, o) = (&mut self.summary, &other.summary);
        s.scanned += o.scanned;
        s.rewrapped += o.rewrapped;
        s.conflicts += o.conflicts;
        s.undecryptable += o.undecryptable;
        s.not_configured += o.not_configured;
        s.repaired += o.repaired;
        let (s, o) = (&mut self.verification, &other.verification);
        s.rows += o.rows;
        s.ok += o.ok;
        s.unverifiable += o.unverifiable;
        s.stale_lookup += o.stale_lookup;
        s.drifted.extend(o.drifted.iter().cloned());
    }

    /// Counts a judged row.
    pub(crate) fn count<M: Rotate>(&mut self, record: &M::Record, verdict: &Verdict<M>) {
        let s = &mut self.status;
        s.rows += 1;
        self.summary.scanned += 1;
        self.verification.rows += 1;
        let mut keys = BTreeSet::new();
        let (mut stale, mut plain, mut bad, mut unconfigured, mut any) =
            (false, false, false, false, false);
        for state in &verdict.states {
            match state {
                ValueState::Current(k) => {
                    any = true;
                    keys.insert(label(k));
                }
                ValueState::Stale(k) => {
                    any = true;
                    stale = true;
                    keys.insert(label(k));
                }
                ValueState::Plaintext => {
                    any = true;
                    plain = true;
                    keys.insert("plaintext".to_owned());
                }
                ValueState::NotConfigured => {
                    any = true;
                    unconfigured = true;
                    keys.insert("not configured".to_owned());
                }
                ValueState::Undecryptable(_) => {
                    any = true;
                    bad = true;
                    keys.insert("undecryptable".to_owned());
                }
                ValueState::Empty => {}
            }
        }
        let legacy = M::FLAGGED && M::flag(record) == Some(false);
        let stale_lookup = verdict.hashes.contains(&HashState::Stale);
        let drift = verdict.hashes.contains(&HashState::Drift);
        for k in keys {
            *s.by_key.entry(k).or_default() += 1;
        }
        if bad {
            s.undecryptable += 1;
            self.summary.undecryptable += 1;
            self.verification.unverifiable += 1;
        } else if unconfigured {
            s.not_configured += 1;
            self.summary.not_configured += 1;
        } else if plain || legacy {
            s.plaintext += 1;
        } else if stale || stale_lookup {
            s.stale += 1;
        } else if any {
            s.current += 1;
        } else {
            s.empty += 1;
        }
        if stale_lookup {
            s.stale_lookup += 1;
            self.verification.stale_lookup += 1;
        }
        if drift {
            s.drifted += 1;
            self.verification.drifted.push(Drift {
                key: format!("{:?}", M::key(record)),
                columns: M::HASHES
                    .iter()
                    .zip(&verdict.hashes)
                    .filter(|(_, h)| **h == HashState::Drift)
                    .map(|(h, _)| h.spec.column)
                    .collect(),
            });
        } else if !bad {
            self.verification.ok += 1;
        }
    }
}

/// What one run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    Status,
    Verify,
    Rewrap,
}

impl Job {
    pub(crate) fn purpose(self, opts: &Options) -> Purpose {
        match self {
            Job::Rewrap if !opts.dry_run => Purpose::Rewrap {
                repair: opts.repair_hashes,
            },
            _ => Purpose::Inspect,
        }
    }

    pub(crate) fn writes(self, opts: &Options) -> bool {
        self == Job::Rewrap && !opts.dry_run
    }
}

/// The shared position of a run: several connections take batches from it in key order.
#[derive(Debug)]
pub(crate) struct Cursor<K> {
    pub(crate) after: Option<K>,
    pub(crate) done: bool,
    /// Some batch's key range held rows another transaction had locked (skipped).
    pub(crate) skipped: bool,
}

impl<K> Default for Cursor<K> {
    fn default() -> Self {
        Self {
            after: None,
            done: false,
            skipped: false,
        }
    }
}

/// The outcome of judging a batch: counts, and the changesets to write.
pub(crate) struct Judged<'r, M: Rotate> {
    pub(crate) tally: Tally,
    pub(crate) writes: Vec<(&'r M::Record, M::Rewrite)>,
    pub(crate) repairs: u64,
    /// Rows a rewrap writes (for a dry run: would write).
    pub(crate) wanted: u64,
}

/// Judges a batch and counts it.
///
/// # Errors
/// As [`judge_all`]; [`Error::Unreadable`] with [`Unreadable::Stop`].
pub(crate) fn judge_batch<'r, M>(
    rows: &'r [M::Record],
    keys: &RowKeys,
    purpose: Purpose,
    opts: &Options,
    threads: usize,
) -> Result<Judged<'r, M>, Error>
where
    M: Rotate,
    M::Record: Sync,
{
    let verdicts = judge_all::<M>(rows, keys, purpose, threads)?;
    let mut tally = Tally::default();
    let mut writes = Vec::new();
    let mut repairs = 0;
    let mut wanted = 0;
    for (record, mut verdict) in rows.iter().zip(verdicts) {
        if opts.on_unreadable == Unreadable::Stop
            && let Some((column, e)) = verdict.unreadable.take()
        {
            return Err(Error::Unreadable {
                table: table_name::<M>(),
                key: format!("{:?}", M::key(record)),
                column,
                source: Box::new(e),
            });
        }
        tally.count::<M>(record, &verdict);
        if verdict.needs {
            wanted += 1;
        }
        if verdict.repairs {
            repairs += 1;
        }
        if let Some(rewrite) = verdict.rewrite.take() {
            writes.push((record, rewrite));
        }
    }
    Ok(Judged {
        tally,
        writes,
        repairs,
        wanted,
    })
}

/// Paces a run to its rate limit.
pub(crate) struct Pacer {
    rate: Option<Rate>,
    start: Instant,
}

impl Pacer {
    pub(crate) fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            start: Instant::now(),
        }
    }

    /// How long to wait after a batch, `rows` read so far.
    pub(crate) fn wait(&self, rows: u64) -> Option<Duration> {
        match self.rate? {
            Rate::Pause(d) => Some(d),
            Rate::RowsPerSecond(r) if r > 0.0 => {
                #[expect(clippy::cast_precision_loss, reason = "row counts far below 2^52")]
                let due = Duration::from_secs_f64(rows as f64 / r);
                due.checked_sub(self.start.elapsed())
            }
            Rate::RowsPerSecond(_) => None,
        }
    }
}

/// The lock a batch is read with.
pub(crate) fn lock_for(writes: bool, locks: Locks, blocking: bool) -> Lock {
    match (writes, locks) {
        (false, _) | (true, Locks::WriteLock) => Lock::None,
        (true, Locks::Wait) => Lock::Wait,
        (true, Locks::SkipLocked) if blocking => Lock::Wait,
        (true, Locks::SkipLocked) => Lock::SkipLocked,
    }
}

/// Reports progress.
pub(crate) fn report<M: Rotate>(opts: &Options, total: &Tally, estimated: u64) {
    if let Some(progress) = &opts.progress {
        progress(&Progress {
            table: M::TABLE,
            scanned: total.summary.scanned,
            rewrapped: total.summary.rewrapped,
            conflicts: total.summary.conflicts,
            unreadable: total.summary.undecryptable,
            estimated_total: estimated,
        });
    }
}

/// Fills in the names of a run's reports.
pub(crate) fn finish<M: Rotate>(mut tally: Tally, keys: &RowKeys) -> Tally {
    tally.status.table = table_name::<M>();
    tally.status.resource = M::RESOURCE;
    tally.status.write_key = keys
        .ring
        .as_deref()
        .map_or_else(|| "not configured".to_owned(), |r| label(r.write_key()));
    tally.summary.table = table_name::<M>();
    tally.verification.table = table_name::<M>();
    tally
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One connection's share of a pass: batches taken from `cursor` until it is done.
#[expect(
    clippy::too_many_arguments,
    reason = "the settings of one pass, passed to one private function"
)]
fn work<M, C>(
    conn: &mut C,
    cursor: &Mutex<Cursor<M::Key>>,
    keys: &RowKeys,
    job: Job,
    opts: &Options,
    lock: Lock,
    threads: usize,
    on_batch: &(dyn Fn(&Tally) + Sync),
) -> Result<Tally, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session,
{
    let writes = job.writes(opts);
    let purpose = job.purpose(opts);
    let limit = to_i64(opts.batch_size);
    let mut total = Tally::default();
    loop {
        let batch = conn.batch(writes, |c| {
            // The page is read and the cursor moved under the cursor's lock; whether the page
            // skipped rows locked by others is counted after it, so that the other jobs can
            // read their pages meanwhile (the range counted is this page's, whenever counted).
            let (rows, range) = {
                let mut shared = cursor.lock().unwrap_or_else(PoisonError::into_inner);
                if shared.done {
                    return Ok(None);
                }
                let after = shared.after.clone();
                let rows = M::load_page(c, after.as_ref(), limit, lock)?;
                let full = to_i64(rows.len()) >= limit;
                let upto = if full { rows.last().map(M::key) } else { None };
                match &upto {
                    Some(last) => shared.after = Some(last.clone()),
                    None => shared.done = true,
                }
                let range = (lock == Lock::SkipLocked && !shared.skipped).then_some((after, upto));
                (rows, range)
            };
            if let Some((after, upto)) = range {
                let n = M::count_range(c, after.as_ref(), upto.as_ref())?;
                if n > to_i64(rows.len()) {
                    cursor
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .skipped = true;
                }
            }
            let judged = judge_batch::<M>(&rows, keys, purpose, opts, threads)?;
            let mut tally = judged.tally;
            let wanted = judged.wanted;
            let written = if writes && !judged.writes.is_empty() {
                M::write(c, &judged.writes)? as u64
            } else if writes {
                0
            } else {
                wanted
            };
            tally.summary.rewrapped = written.min(wanted);
            tally.summary.conflicts = wanted.saturating_sub(written);
            tally.summary.repaired = if written == wanted { judged.repairs } else { 0 };
            Ok(Some(tally))
        })?;
        let Some(tally) = batch else {
            return Ok(total);
        };
        total.add(&tally);
        on_batch(&tally);
    }
}

/// A whole run on one table with `conns` (the first is the caller's).
fn run<M, C>(conns: &mut [&mut C], job: Job, opts: &Options) -> Result<Tally, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session + Send,
{
    let keys = row_keys::<M>()?;
    let writes = job.writes(opts) && keys.ring.is_some();
    let estimated = u64::try_from(M::count(conns[0])?).unwrap_or(0);
    let locks = if writes {
        conns[0].locks()?
    } else {
        Locks::WriteLock
    };
    let threads = judge_threads(conns.len());
    let pacer = Pacer::new(opts.rate);
    let progress = Mutex::new(Tally::default());
    let on_batch = |batch: &Tally| {
        if batch.summary.scanned == 0 {
            return;
        }
        let mut all = progress.lock().unwrap_or_else(PoisonError::into_inner);
        all.add(batch);
        report::<M>(opts, &all, estimated);
        let scanned = all.summary.scanned;
        drop(all);
        if let Some(wait) = pacer.wait(scanned) {
            std::thread::sleep(wait);
        }
    };
    let pass = |conns: &mut [&mut C], lock: Lock| -> Result<(Tally, bool), Error> {
        let cursor = Mutex::new(Cursor::default());
        let results: Vec<Result<Tally, Error>> = std::thread::scope(|scope| {
            let (first, rest) = conns
                .split_first_mut()
                .ok_or_else(|| Error::Storage("a rotation needs a connection".into()))?;
            let helpers: Vec<_> = rest
                .iter_mut()
                .map(|c| {
                    let (keys, cursor, on_batch) = (&keys, &cursor, &on_batch);
                    scope.spawn(move || {
                        crate::with_keyring(Keys::clone(&keys.keys), || {
                            work::<M, C>(&mut **c, cursor, keys, job, opts, lock, threads, on_batch)
                        })
                    })
                })
                .collect();
            let mut results = vec![work::<M, C>(
                &mut **first,
                &cursor,
                &keys,
                job,
                opts,
                lock,
                threads,
                &on_batch,
            )];
            if results[0].is_err() {
                cursor.lock().unwrap_or_else(PoisonError::into_inner).done = true;
            }
            for helper in helpers {
                results.push(helper.join().unwrap_or_else(|_| {
                    Err(Error::Storage("a rotation worker thread panicked".into()))
                }));
            }
            Ok::<_, Error>(results)
        })?;
        let mut tally = Tally::default();
        for r in results {
            tally.add(&r?);
        }
        let skipped = cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .skipped;
        Ok((tally, skipped))
    };
    let (mut tally, skipped) = pass(conns, lock_for(writes, locks, false))?;
    if writes && skipped {
        // Rows another transaction held were skipped: a blocking pass picks them up (rows
        // already current are only read).
        let (second, _) = pass(&mut conns[..1], lock_for(writes, locks, true))?;
        tally.summary.scanned += second.summary.scanned;
        tally.summary.rewrapped += second.summary.rewrapped;
        tally.summary.conflicts += second.summary.conflicts;
        tally.summary.repaired += second.summary.repaired;
        // The second pass read every row again: its counts of what is left are the truth.
        tally.summary.undecryptable = second.summary.undecryptable;
        tally.summary.not_configured = second.summary.not_configured;
    }
    Ok(finish::<M>(tally, &keys))
}

/// Counts what the keyring makes of every row of `M`'s table: rows by state and key, and hash
/// columns that drifted.
///
/// # Errors
/// [`Error::NoKeyring`], [`Error::Resource`], [`Error::NoLookupKey`], [`Error::Database`].
pub fn status<M, C>(conn: &mut C) -> Result<TableStatus, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session + Send,
{
    status_with::<M, C>(conn, &Options::default().batch_size(2000))
}

/// [`status`] with options (batch size, progress, rate).
///
/// # Errors
/// As [`status`].
pub fn status_with<M, C>(conn: &mut C, opts: &Options) -> Result<TableStatus, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session + Send,
{
    Ok(run::<M, C>(&mut [conn], Job::Status, opts)?.status)
}

/// Recomputes every hash column from the decrypted value and lists the rows that do not
/// match, by key (never a value).
///
/// # Errors
/// As [`status`].
pub fn verify<M, C>(conn: &mut C, opts: &Options) -> Result<Verification, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session + Send,
{
    Ok(run::<M, C>(&mut [conn], Job::Verify, opts)?.verification)
}

/// Re-encrypts every stale or plaintext value of `M`'s table with the current write key (and
/// rehashes hash columns under an older lookup key), on one connection.
///
/// # Errors
/// As [`status`]; [`Error::Crypto`] when re-encrypting fails; [`Error::Unreadable`] with
/// [`Unreadable::Stop`].
pub fn rewrap<M, C>(conn: &mut C, opts: &Options) -> Result<RewrapSummary, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session + Send,
{
    Ok(run::<M, C>(&mut [conn], Job::Rewrap, opts)?.summary)
}

/// [`rewrap`] with [`Options::jobs`] connections at once (`conn` and `jobs - 1` from
/// `connect`): each takes the next batch in key order under a shared cursor, then decrypts,
/// re-encrypts and writes it while the others read theirs. Worth it on servers with row locks
/// (PostgreSQL, MySQL); on SQLite, which has one writer, use [`rewrap`].
///
/// # Errors
/// As [`rewrap`]; the first error of any connection, or of `connect`.
pub fn rewrap_parallel<M, C>(
    conn: &mut C,
    connect: &(dyn Fn() -> diesel::ConnectionResult<C> + Sync),
    opts: &Options,
) -> Result<RewrapSummary, Error>
where
    M: Table<C>,
    M::Record: Sync,
    C: Session + Send,
{
    let mut extra = Vec::with_capacity(opts.jobs.saturating_sub(1));
    for _ in 1..opts.jobs.max(1) {
        extra.push(connect().map_err(|e| Error::Storage(format!("{e}").into()))?);
    }
    let mut conns: Vec<&mut C> = std::iter::once(conn).chain(extra.iter_mut()).collect();
    Ok(run::<M, C>(&mut conns, Job::Rewrap, opts)?.summary)
}
