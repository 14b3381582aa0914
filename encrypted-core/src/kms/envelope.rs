//! The KMS v2 envelope transformer and its key lifecycle.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::crypto::{KEY_LEN, SeedKdf, random_uid, sha256};
use super::proto::{
    DekSourceType, ObjectRef, encode_tail, put_tag, put_varint, validate_annotations,
    validate_dek_source, validate_key_id, varint_len,
};
use super::{DecryptRequest, KeyService, KmsError, KmsOperation};
use crate::gcm::{Engine, GcmKey, NONCE_LEN, TAG_LEN};
use crate::{DecryptError, EncryptError, Error, KeyLabel, Opened, ProviderKind, Transformer};

/// Bytes of random `info` per value in seed mode.
const INFO_LEN: usize = 32;

/// Timing and sizing of a [`KmsTransformer`]. The defaults are Kubernetes':
///
/// | option | default | meaning |
/// |---|---|---|
/// | [`healthy_interval`](Self::healthy_interval) | 60 s | time between `status` calls while healthy |
/// | [`unhealthy_interval`](Self::unhealthy_interval) | 10 s | time between `status` calls after a failure |
/// | [`write_window`](Self::write_window) | 3 min | how long after the last successful `status` writes go on with the current seed |
/// | [`seed_cache_capacity`](Self::seed_cache_capacity) | 1024 | unwrapped seeds and keys kept for reads (least recently used evicted) |
/// | [`derived_key_cache_capacity`](Self::derived_key_cache_capacity) | 4096 | per-value keys kept for repeated reads of the same value (0: none) |
/// | [`background_polling`](Self::background_polling) | on | poll from a thread of its own; off, only [`KmsTransformer::poll_now`] polls |
///
/// ```
/// use std::time::Duration;
/// use encrypted_core::kms::KmsOptions;
/// let options = KmsOptions::default()
///     .healthy_interval(Duration::from_secs(30))
///     .write_window(Duration::from_secs(120));
/// assert_eq!(options.get_write_window(), Duration::from_secs(120));
/// ```
#[derive(Debug, Clone)]
pub struct KmsOptions {
    healthy_interval: Duration,
    unhealthy_interval: Duration,
    write_window: Duration,
    seed_cache_capacity: usize,
    derived_key_cache_capacity: usize,
    background_polling: bool,
}

impl Default for KmsOptions {
    fn default() -> Self {
        Self {
            healthy_interval: Duration::from_secs(60),
            unhealthy_interval: Duration::from_secs(10),
            write_window: Duration::from_secs(180),
            seed_cache_capacity: 1024,
            derived_key_cache_capacity: 4096,
            background_polling: true,
        }
    }
}

impl KmsOptions {
    /// Time between `status` calls while the key service is healthy.
    #[must_use]
    pub fn healthy_interval(mut self, interval: Duration) -> Self {
        self.healthy_interval = interval;
        self
    }

    /// Time between `status` calls after a failed one.
    #[must_use]
    pub fn unhealthy_interval(mut self, interval: Duration) -> Self {
        self.unhealthy_interval = interval;
        self
    }

    /// How long after the last successful `status` writes continue with the current seed.
    #[must_use]
    pub fn write_window(mut self, window: Duration) -> Self {
        self.write_window = window;
        self
    }

    /// How many unwrapped seeds (and legacy data-encryption keys) are kept for reads; at least 1.
    #[must_use]
    pub fn seed_cache_capacity(mut self, capacity: usize) -> Self {
        self.seed_cache_capacity = capacity.max(1);
        self
    }

    /// How many per-value keys (HKDF output, expanded for AES-GCM) are kept, so that reading the
    /// same value again skips HKDF and the AES key schedule, as Kubernetes caches them; about
    /// 700 bytes each, an arbitrary one evicted when full. 0 turns the cache off.
    #[must_use]
    pub fn derived_key_cache_capacity(mut self, capacity: usize) -> Self {
        self.derived_key_cache_capacity = capacity;
        self
    }

    /// Whether a background thread polls `status`. Without it only [`KmsTransformer::poll_now`]
    /// (and construction) poll, which makes tests deterministic.
    #[must_use]
    pub fn background_polling(mut self, on: bool) -> Self {
        self.background_polling = on;
        self
    }

    /// The configured write window.
    #[must_use]
    pub fn get_write_window(&self) -> Duration {
        self.write_window
    }
}

/// Counters of a [`KmsTransformer`], read with [`KmsTransformer::metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KmsMetrics {
    /// `status` calls made.
    pub status_calls: u64,
    /// `status` calls that failed or reported unhealthy.
    pub status_failures: u64,
    /// `encrypt` (wrap) calls made.
    pub encrypt_calls: u64,
    /// `encrypt` calls that failed (including a key id that did not match `status`).
    pub encrypt_failures: u64,
    /// `decrypt` (unwrap) calls made.
    pub decrypt_calls: u64,
    /// `decrypt` calls that failed.
    pub decrypt_failures: u64,
    /// Reads whose seed or key was already in memory.
    pub cache_hits: u64,
    /// Reads that had to unwrap (each is one `decrypt` call).
    pub cache_misses: u64,
    /// Seeds generated and wrapped (start-up and key id changes).
    pub seeds_generated: u64,
    /// Writes refused because no seed was usable.
    pub writes_refused: u64,
    /// Unwrapped seeds and keys held for reads now.
    pub cached_keys: u64,
    /// Reads of seed-mode values whose per-value key was still in memory.
    pub derived_key_hits: u64,
}

/// The key service's state as the envelope layer last saw it, from [`KmsTransformer::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KmsHealth {
    /// Whether the last `status` (and the wrap it may have needed) succeeded.
    pub healthy: bool,
    /// The key id of the current write seed, if there is one.
    pub write_key_id: Option<String>,
    /// Whether a write would succeed now (a seed exists and the write window has not expired).
    pub writable: bool,
    /// Time since the last successful `status`.
    pub since_last_success: Option<Duration>,
    /// The last error, if the last check failed.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    status_calls: AtomicU64,
    status_failures: AtomicU64,
    encrypt_calls: AtomicU64,
    encrypt_failures: AtomicU64,
    decrypt_calls: AtomicU64,
    decrypt_failures: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    seeds_generated: AtomicU64,
    writes_refused: AtomicU64,
    derived_key_hits: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An unwrapped secret, ready to read values.
enum ReadKey {
    /// `HKDF_SHA256_XNONCE_AES_GCM_SEED`, with the seed's cache digest.
    Seed(Arc<SeedKdf>, [u8; 32]),
    /// `AES_GCM_KEY`: the data-encryption key, expanded.
    Dek(GcmKey),
}

/// The seed that writes, with everything each value repeats precomputed.
struct WriteSeed {
    key_id: String,
    dek_source: Box<[u8]>,
    annotations: Vec<(String, Vec<u8>)>,
    kdf: Arc<SeedKdf>,
    read_key: Arc<ReadKey>,
    /// Fields 2 to 5 of the `EncryptedObject`, encoded.
    tail: Box<[u8]>,
    /// Nanoseconds since `Inner::epoch` after which writes are refused; moved forward by every
    /// successful `status` with the same key id.
    valid_until: AtomicU64,
}

impl WriteSeed {
    fn matches(&self, object: &ObjectRef<'_>) -> bool {
        object.source_type == DekSourceType::HkdfSha256XnonceAesGcmSeed
            && object.key_id == self.key_id
            && object.dek_source == &*self.dek_source
            && object.annotations.len() == self.annotations.len()
            && object
                .annotations
                .iter()
                .zip(&self.annotations)
                .all(|((k1, v1), (k2, v2))| *k1 == k2 && *v1 == v2.as_slice())
    }
}

#[derive(Default)]
struct Health {
    healthy: bool,
    last_success: Option<Instant>,
    last_error: Option<String>,
}

/// Unwrapped seeds, keyed by the SHA-256 of Kubernetes' cache key (source type, wrapped
/// source, key id and sorted annotations), least recently used evicted beyond capacity.
struct SeedCache {
    capacity: usize,
    map: RwLock<HashMap<[u8; 32], CacheSlot>>,
    tick: AtomicU64,
}

struct CacheSlot {
    key: Arc<ReadKey>,
    last_used: AtomicU64,
}

impl SeedCache {
    fn get(&self, digest: &[u8; 32]) -> Option<Arc<ReadKey>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let slot = map.get(digest)?;
        slot.last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(Arc::clone(&slot.key))
    }

    fn insert(&self, digest: [u8; 32], key: Arc<ReadKey>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity
            && !map.contains_key(&digest)
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
                .map(|(d, _)| *d)
        {
            map.remove(&oldest);
        }
        let last_used = AtomicU64::new(self.tick.fetch_add(1, Ordering::Relaxed));
        map.insert(digest, CacheSlot { key, last_used });
    }

    fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Kubernetes' `generateCacheKey`, hashed with SHA-256 as its `simpleCache` does.
fn cache_digest<'a>(
    source_type: DekSourceType,
    dek_source: &[u8],
    key_id: &str,
    annotations: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
) -> [u8; 32] {
    // Lengths fit in u16: validation bounds the source and key id by 1 KiB and annotations by
    // 32 KiB.
    let mut buf = Vec::with_capacity(16 + dek_source.len() + key_id.len());
    buf.extend_from_slice(&source_type.as_i32().to_be_bytes());
    let mut put = |bytes: &[u8]| {
        buf.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    put(dek_source);
    put(key_id.as_bytes());
    if annotations.len() > 0 {
        let count = u32::try_from(annotations.len()).unwrap_or(u32::MAX);
        buf.extend_from_slice(&count.to_be_bytes());
        for (k, v) in annotations {
            buf.extend_from_slice(&u16::try_from(k.len()).unwrap_or(u16::MAX).to_be_bytes());
            buf.extend_from_slice(k.as_bytes());
            buf.extend_from_slice(&u16::try_from(v.len()).unwrap_or(u16::MAX).to_be_bytes());
            buf.extend_from_slice(v);
        }
    }
    sha256(&[&buf])
}

struct Inner {
    label: KeyLabel,
    service: Arc<dyn KeyService>,
    engine: Engine,
    options: KmsOptions,
    epoch: Instant,
    write: RwLock<Option<Arc<WriteSeed>>>,
    health: Mutex<Health>,
    /// One status check (and rotation) at a time.
    check_lock: Mutex<()>,
    cache: SeedCache,
    derived: DerivedCache,
    /// One unwrap per wrapped source at a time: concurrent readers of a new seed wait for the
    /// first one's `decrypt` instead of each making their own.
    inflight: Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>,
    counters: Counters,
}

/// KMS v2 envelope encryption, byte-compatible with `k8s.io/apiserver`.
///
/// Writes in seed mode (`HKDF_SHA256_XNONCE_AES_GCM_SEED`): one random 32-byte seed, wrapped
/// once by the [`KeyService`]; per value a random 32-byte `info`, the key
/// `HKDF-Expand-SHA256(PRK = seed, info)` (32 bytes, no extract step) and a random 12-byte nonce;
/// stored as the protobuf [`EncryptedObject`](super::EncryptedObject) with
/// `encryptedData = info ‖ nonce ‖ AES-256-GCM(plaintext, AAD = context) ‖ tag`. The keyring adds
/// the `k8s:enc:kms:v2:<name>:` prefix. Reads accept seed-mode and `AES_GCM_KEY` objects
/// (`encryptedData = nonce ‖ ciphertext ‖ tag` under the unwrapped key itself).
///
/// Lifecycle, as Kubernetes runs it: `status` is polled (every
/// [`healthy_interval`](KmsOptions::healthy_interval), or
/// [`unhealthy_interval`](KmsOptions::unhealthy_interval) after a failure); a new key id makes a
/// new seed, which the service must wrap under that same key id; unwrapped seeds are cached; while
/// the service is down, reads of cached seeds go on and writes go on with the current seed until
/// [`write_window`](KmsOptions::write_window) after the last successful `status`, then fail with
/// [`KmsError::WriteWindowExpired`]. A read reports `stale` when the value's key id is not the
/// current write key id, or it is an `AES_GCM_KEY` object.
///
/// Unlike Kubernetes, a read is attempted even before the first successful `status` (it needs only
/// `decrypt`), so a key service that answers `decrypt` but not `status` does not stop reads.
///
/// ```
/// use std::sync::Arc;
/// use encrypted_core::Transformer;
/// use encrypted_core::kms::{KmsOptions, KmsTransformer, LocalKeyService};
/// let service = Arc::new(LocalKeyService::from_key(&[1u8; 32], "example")?);
/// let kms = KmsTransformer::new("example", service, KmsOptions::default())?;
/// let mut stored = Vec::new();
/// kms.seal(b"secret", b"users/alice", &mut stored)?;
/// let opened = kms.open(&stored, b"users/alice")?;
/// assert_eq!(opened.plaintext, b"secret");
/// assert!(!opened.stale);
/// assert_eq!(kms.metrics().encrypt_calls, 1);
/// # Ok::<(), encrypted_core::Error>(())
/// ```
pub struct KmsTransformer {
    inner: Arc<Inner>,
    /// Dropping it stops the poller thread.
    _stop: Option<mpsc::Sender<()>>,
}

impl fmt::Debug for KmsTransformer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsTransformer")
            .field("name", &self.inner.label.name)
            .field("service", &self.inner.service)
            .field("engine", &self.inner.engine)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl KmsTransformer {
    /// Builds the transformer for the `kms` provider `name`, checks the key service once
    /// (`status`, then `encrypt` of a new seed) and starts the poller.
    ///
    /// A key service that is down at start-up is not an error: the failure is logged, writes are
    /// refused with [`KmsError::NoWriteSeed`] and the poller retries every
    /// [`unhealthy_interval`](KmsOptions::unhealthy_interval).
    ///
    /// # Errors
    /// [`Error::Other`] if the poller thread cannot be started.
    pub fn new(
        name: &str,
        service: Arc<dyn KeyService>,
        options: KmsOptions,
    ) -> Result<Self, Error> {
        Self::with_engine(name, service, options, Engine::default())
    }

    /// Like [`new`](Self::new) with an explicit AES-GCM engine.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_engine(
        name: &str,
        service: Arc<dyn KeyService>,
        options: KmsOptions,
        engine: Engine,
    ) -> Result<Self, Error> {
        let inner = Arc::new(Inner {
            label: KeyLabel {
                provider: ProviderKind::Kms,
                name: Arc::from(name),
            },
            service,
            engine,
            cache: SeedCache {
                capacity: options.seed_cache_capacity.max(1),
                map: RwLock::new(HashMap::new()),
                tick: AtomicU64::new(0),
            },
            derived: DerivedCache {
                capacity: options.derived_key_cache_capacity,
                map: RwLock::new(HashMap::new()),
            },
            options,
            epoch: Instant::now(),
            write: RwLock::new(None),
            health: Mutex::new(Health::default()),
            check_lock: Mutex::new(()),
            inflight: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        // Errors are recorded in the health state and logged; the poller retries.
        let _ = inner.check();
        let stop = if inner.options.background_polling {
            Some(spawn_poller(&inner)?)
        } else {
            None
        };
        Ok(Self { inner, _stop: stop })
    }

    /// Calls `status` now (and wraps a new seed if the key id changed), in this thread.
    ///
    /// # Errors
    /// [`Error::Kms`] when the service is unreachable or unhealthy, its key id is invalid, or
    /// the new seed could not be wrapped under the announced key id. The state is updated either
    /// way (the error also shows in [`health`](Self::health)).
    pub fn poll_now(&self) -> Result<(), Error> {
        self.inner.check()
    }

    /// The provider's counters.
    #[must_use]
    pub fn metrics(&self) -> KmsMetrics {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KmsMetrics {
            status_calls: get(&c.status_calls),
            status_failures: get(&c.status_failures),
            encrypt_calls: get(&c.encrypt_calls),
            encrypt_failures: get(&c.encrypt_failures),
            decrypt_calls: get(&c.decrypt_calls),
            decrypt_failures: get(&c.decrypt_failures),
            cache_hits: get(&c.cache_hits),
            cache_misses: get(&c.cache_misses),
            seeds_generated: get(&c.seeds_generated),
            writes_refused: get(&c.writes_refused),
            derived_key_hits: get(&c.derived_key_hits),
            cached_keys: self.inner.cache.len() as u64,
        }
    }

    /// The key service's state as last seen.
    #[must_use]
    pub fn health(&self) -> KmsHealth {
        let write = self.inner.current();
        let h = lock(&self.inner.health);
        KmsHealth {
            healthy: h.healthy,
            write_key_id: write.as_ref().map(|w| w.key_id.clone()),
            writable: write.is_some_and(|w| !self.inner.expired(&w)),
            since_last_success: h.last_success.map(|t| t.elapsed()),
            last_error: h.last_error.clone(),
        }
    }

    /// Checks the key service end to end, bypassing every cache: `status` (wrapping a new seed
    /// when the key id changed), then `decrypt` of the current seed's wrapped form, which must
    /// give back the seed in use. A key service that still wraps but can no longer unwrap (a
    /// lost `kms:Decrypt` permission, a plugin whose `Status` never exercises decryption) fails
    /// here, where a round trip through the cached seed would succeed. One `status` and one
    /// `decrypt` call (plus an `encrypt` when the key rotated).
    ///
    /// # Errors
    /// [`Error::Kms`]: the `status` failures of [`poll_now`](Self::poll_now),
    /// [`KmsError::NoWriteSeed`] or [`KmsError::WriteWindowExpired`] when no seed is usable, a
    /// failed `decrypt` call ([`KmsError::Call`]), an unwrapped seed of the wrong size
    /// ([`KmsError::InvalidUnwrappedKey`]) or of other bytes ([`KmsError::UnwrapMismatch`]).
    pub fn check_key_service(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.check()?;
        let seed = inner.write_seed()?;
        let annotations: Vec<(&str, &[u8])> = seed
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let secret = inner.unwrap_secret(&seed.dek_source, &seed.key_id, &annotations)?;
        let unwrapped = SeedKdf::new(&secret).ok_or_else(|| -> Error {
            KmsError::InvalidUnwrappedKey {
                provider: inner.provider(),
                what: "seed",
                expected: "at least 32 bytes",
                found: secret.len(),
            }
            .into()
        })?;
        let mut info = [0u8; INFO_LEN];
        crate::rng::fill_public(&mut info)?;
        if unwrapped.derive(&info)[..] != seed.kdf.derive(&info)[..] {
            return Err(KmsError::UnwrapMismatch {
                provider: inner.provider(),
            }
            .into());
        }
        Ok(())
    }

    /// The provider's label (`kms "<name>"`).
    #[must_use]
    pub fn label(&self) -> &KeyLabel {
        &self.inner.label
    }
}

fn spawn_poller(inner: &Arc<Inner>) -> Result<mpsc::Sender<()>, Error> {
    let (tx, rx) = mpsc::channel::<()>();
    let inner = Arc::clone(inner);
    std::thread::Builder::new()
        .name(format!("kms-status-{}", inner.label.name))
        .spawn(move || {
            loop {
                let wait = if lock(&inner.health).healthy {
                    inner.options.healthy_interval
                } else {
                    inner.options.unhealthy_interval
                };
                match rx.recv_timeout(wait) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {
                        let _ = inner.check();
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .map_err(|e| Error::Other {
            context: "cannot start the KMS status poller thread".to_owned(),
            source: Arc::new(e),
        })?;
    Ok(tx)
}

impl Inner {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn deadline(&self) -> u64 {
        let window = u64::try_from(self.options.write_window.as_nanos()).unwrap_or(u64::MAX);
        self.now().saturating_add(window)
    }

    fn expired(&self, seed: &WriteSeed) -> bool {
        self.now() > seed.valid_until.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<Arc<WriteSeed>> {
        self.write
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn provider(&self) -> String {
        self.label.name.to_string()
    }

    fn call_error(&self, operation: KmsOperation, source: Error) -> Error {
        KmsError::Call {
            provider: self.provider(),
            operation,
            source: Box::new(source),
        }
        .into()
    }

    /// One status check; records the outcome in `health`.
    fn check(&self) -> Result<(), Error> {
        let _one_at_a_time = lock(&self.check_lock);
        let result = self.check_inner();
        let mut health = lock(&self.health);
        match &result {
            Ok(()) => {
                if !health.healthy {
                    tracing::info!(provider = %self.label.name, "KMS key service is healthy");
                }
                health.healthy = true;
                health.last_success = Some(Instant::now());
                health.last_error = None;
            }
            Err(e) => {
                tracing::warn!(provider = %self.label.name, error = %e, "KMS key service check failed");
                health.healthy = false;
                health.last_error = Some(e.to_string());
            }
        }
        result
    }

    fn check_inner(&self) -> Result<(), Error> {
        let span = tracing::debug_span!("kms.status", provider = %self.label.name);
        let _entered = span.enter();
        bump(&self.counters.status_calls);
        let status = self.service.status().map_err(|e| {
            bump(&self.counters.status_failures);
            self.call_error(KmsOperation::Status, e)
        })?;
        if status.version != "v2" {
            bump(&self.counters.status_failures);
            return Err(KmsError::UnsupportedVersion {
                provider: self.provider(),
                version: status.version.chars().take(64).collect(),
            }
            .into());
        }
        if status.healthz != "ok" {
            bump(&self.counters.status_failures);
            return Err(KmsError::Unhealthy {
                provider: self.provider(),
                healthz: status.healthz.chars().take(128).collect(),
            }
            .into());
        }
        if let Err(e) = validate_key_id(&status.key_id) {
            bump(&self.counters.status_failures);
            return Err(KmsError::InvalidStatusKeyId {
                provider: self.provider(),
                reason: e.to_string(),
            }
            .into());
        }
        if let Some(current) = self.current()
            && current.key_id == status.key_id
        {
            current
                .valid_until
                .store(self.deadline(), Ordering::Relaxed);
            return Ok(());
        }
        self.rotate(&status.key_id)
    }

    /// A new seed, wrapped under `status_key_id`.
    fn rotate(&self, status_key_id: &str) -> Result<(), Error> {
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        crate::rng::fill(&mut seed[..])?;
        let kdf = Arc::new(SeedKdf::new(&seed[..]).ok_or(EncryptError::Random)?);
        let uid = random_uid();
        let span = tracing::info_span!("kms.encrypt", provider = %self.label.name, %uid);
        let _entered = span.enter();
        bump(&self.counters.encrypt_calls);
        let response = self.service.encrypt(&uid, &seed[..]).map_err(|e| {
            bump(&self.counters.encrypt_failures);
            self.call_error(KmsOperation::Encrypt, e)
        })?;
        drop(seed);
        let invalid = |e: KmsError| -> Error {
            bump(&self.counters.encrypt_failures);
            self.call_error(KmsOperation::Encrypt, e.into())
        };
        if response.key_id != status_key_id {
            bump(&self.counters.encrypt_failures);
            return Err(KmsError::KeyIdMismatch {
                provider: self.provider(),
                status_key_id: status_key_id.to_owned(),
                response_key_id: response.key_id.chars().take(1024).collect(),
            }
            .into());
        }
        validate_dek_source(&response.ciphertext).map_err(invalid)?;
        validate_annotations(
            response
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .map_err(invalid)?;
        let annotations: Vec<(String, Vec<u8>)> = response.annotations.into_iter().collect();
        let pairs = || annotations.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
        let source_type = DekSourceType::HkdfSha256XnonceAesGcmSeed;
        let mut tail = Vec::new();
        encode_tail(
            &mut tail,
            &response.key_id,
            &response.ciphertext,
            pairs(),
            source_type,
        );
        let digest = cache_digest(source_type, &response.ciphertext, &response.key_id, pairs());
        let read_key = Arc::new(ReadKey::Seed(Arc::clone(&kdf), digest));
        self.cache.insert(digest, Arc::clone(&read_key));
        let new = Arc::new(WriteSeed {
            key_id: response.key_id,
            dek_source: response.ciphertext.into_boxed_slice(),
            annotations,
            kdf,
            read_key,
            tail: tail.into_boxed_slice(),
            valid_until: AtomicU64::new(self.deadline()),
        });
        tracing::info!(
            provider = %self.label.name,
            key_id = %new.key_id,
            "KMS key service wrapped a new seed"
        );
        *self.write.write().unwrap_or_else(PoisonError::into_inner) = Some(new);
        bump(&self.counters.seeds_generated);
        Ok(())
    }

    /// The seed that writes now, or why there is none.
    fn write_seed(&self) -> Result<Arc<WriteSeed>, Error> {
        let current = self.current();
        let refused = |e: KmsError| -> Error {
            bump(&self.counters.writes_refused);
            e.into()
        };
        let Some(seed) = current else {
            return Err(refused(KmsError::NoWriteSeed {
                provider: self.provider(),
                last_error: lock(&self.health).last_error.clone(),
            }));
        };
        if self.expired(&seed) {
            let health = lock(&self.health);
            return Err(refused(KmsError::WriteWindowExpired {
                provider: self.provider(),
                elapsed: health.last_success.map_or(Duration::ZERO, |t| t.elapsed()),
                window: self.options.write_window,
                last_error: health.last_error.clone(),
            }));
        }
        Ok(seed)
    }

    /// The unwrapped key for a stored object: from the cache, or one `decrypt` call.
    fn read_key(&self, object: &ObjectRef<'_>) -> Result<Arc<ReadKey>, Error> {
        let digest = cache_digest(
            object.source_type,
            object.dek_source,
            object.key_id,
            object.annotations.iter().copied(),
        );
        if let Some(key) = self.cache.get(&digest) {
            bump(&self.counters.cache_hits);
            return Ok(key);
        }
        let flight = Arc::clone(lock(&self.inflight).entry(digest).or_default());
        let result = {
            let _only_caller = lock(&flight);
            if let Some(key) = self.cache.get(&digest) {
                bump(&self.counters.cache_hits);
                Ok(key)
            } else {
                bump(&self.counters.cache_misses);
                self.unwrap_key(object, digest).map(|key| {
                    let key = Arc::new(key);
                    self.cache.insert(digest, Arc::clone(&key));
                    key
                })
            }
        };
        lock(&self.inflight).remove(&digest);
        result
    }

    fn unwrap_key(&self, object: &ObjectRef<'_>, digest: [u8; 32]) -> Result<ReadKey, Error> {
        let secret = self.unwrap_secret(object.dek_source, object.key_id, &object.annotations)?;
        let invalid = |what, expected| -> Error {
            bump(&self.counters.decrypt_failures);
            KmsError::InvalidUnwrappedKey {
                provider: self.provider(),
                what,
                expected,
                found: secret.len(),
            }
            .into()
        };
        match object.source_type {
            DekSourceType::HkdfSha256XnonceAesGcmSeed => SeedKdf::new(&secret)
                .map(|kdf| ReadKey::Seed(Arc::new(kdf), digest))
                .ok_or_else(|| invalid("seed", "at least 32 bytes")),
            DekSourceType::AesGcmKey => GcmKey::new(self.engine, &secret)
                .map(ReadKey::Dek)
                .ok_or_else(|| invalid("data-encryption key", "16, 24 or 32 bytes")),
        }
    }

    /// One `decrypt` call for a wrapped seed or key (no cache).
    fn unwrap_secret(
        &self,
        dek_source: &[u8],
        key_id: &str,
        annotations: &[(&str, &[u8])],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let uid = random_uid();
        let span = tracing::info_span!(
            "kms.decrypt",
            provider = %self.label.name,
            %uid,
            %key_id
        );
        let _entered = span.enter();
        bump(&self.counters.decrypt_calls);
        let annotations: BTreeMap<String, Vec<u8>> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect();
        let request = DecryptRequest::new(dek_source.to_vec(), key_id, annotations);
        self.service.decrypt(&uid, &request).map_err(|e| {
            bump(&self.counters.decrypt_failures);
            self.call_error(KmsOperation::Decrypt, e)
        })
    }

    fn truncated(&self, expected: usize, found: usize) -> Error {
        DecryptError::Truncated {
            key: self.label.clone(),
            expected,
            found,
        }
        .into()
    }

    /// `nonce(12) ‖ ciphertext ‖ tag(16)` under `key`.
    fn open_gcm(&self, key: &GcmKey, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let Some((nonce, rest)) = data.split_first_chunk::<NONCE_LEN>() else {
            return Err(self.truncated(NONCE_LEN + TAG_LEN, data.len()));
        };
        let Some((ciphertext, tag)) = rest.split_last_chunk::<TAG_LEN>() else {
            return Err(self.truncated(NONCE_LEN + TAG_LEN, data.len()));
        };
        let mut plaintext = vec![0u8; ciphertext.len()];
        key.open(nonce, aad, ciphertext, tag, &mut plaintext)
            .map_err(|_| DecryptError::Authentication {
                key: self.label.clone(),
            })?;
        Ok(plaintext)
    }

    /// `info(32) ‖ nonce(12) ‖ ciphertext ‖ tag(16)` under HKDF-Expand(seed, info).
    fn open_seed(
        &self,
        kdf: &SeedKdf,
        seed_digest: &[u8; 32],
        data: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let Some((info, rest)) = data
            .split_first_chunk::<INFO_LEN>()
            .filter(|_| data.len() >= INFO_LEN + NONCE_LEN + TAG_LEN)
        else {
            return Err(self.truncated(INFO_LEN + NONCE_LEN + TAG_LEN, data.len()));
        };
        let cache_key = (*seed_digest, *info);
        if let Some(gcm) = self.derived.get(&cache_key) {
            bump(&self.counters.derived_key_hits);
            return self.open_gcm(&gcm, rest, aad);
        }
        let key = kdf.derive(info);
        let gcm =
            GcmKey::new(self.engine, &key[..]).ok_or_else(|| DecryptError::Authentication {
                key: self.label.clone(),
            })?;
        let plaintext = self.open_gcm(&gcm, rest, aad)?;
        // Only keys that opened a value are kept: forged objects cannot fill the cache.
        self.derived.insert(cache_key, Arc::new(gcm));
        Ok(plaintext)
    }
}

/// (seed digest, info): what identifies a per-value key.
type DerivedId = ([u8; 32], [u8; INFO_LEN]);

/// Per-value keys of seed-mode values read recently.
struct DerivedCache {
    capacity: usize,
    map: RwLock<HashMap<DerivedId, Arc<GcmKey>>>,
}

impl DerivedCache {
    fn get(&self, key: &DerivedId) -> Option<Arc<GcmKey>> {
        if self.capacity == 0 {
            return None;
        }
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn insert(&self, key: DerivedId, gcm: Arc<GcmKey>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity
            && let Some(victim) = map.keys().next().copied()
        {
            map.remove(&victim);
        }
        map.insert(key, gcm);
    }
}

impl Transformer for KmsTransformer {
    /// [`KmsTransformer::check_key_service`].
    fn self_test(&self) -> Result<(), Error> {
        self.check_key_service()
    }

    fn overhead(&self) -> usize {
        let tail = self.inner.current().map_or(64, |w| w.tail.len());
        1 + 10 + INFO_LEN + NONCE_LEN + TAG_LEN + tail
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let inner = &*self.inner;
        if aad.is_empty() {
            return Err(EncryptError::EmptyContext {
                key: inner.label.clone(),
            }
            .into());
        }
        let seed = inner.write_seed()?;
        let mut random = [0u8; INFO_LEN + NONCE_LEN];
        crate::rng::fill_public(&mut random)?;
        let (info, nonce) = random.split_at(INFO_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| EncryptError::Random)?;
        let key = seed.kdf.derive(info);
        let cipher_failed = || -> Error {
            EncryptError::Cipher {
                key: inner.label.clone(),
                len: plaintext.len(),
            }
            .into()
        };
        let gcm = GcmKey::new(inner.engine, &key[..]).ok_or_else(cipher_failed)?;
        let data_len = INFO_LEN + NONCE_LEN + plaintext.len() + TAG_LEN;
        let base = out.len();
        out.reserve(1 + varint_len(data_len as u64) + data_len + seed.tail.len());
        put_tag(out, 1, 2);
        put_varint(out, data_len as u64);
        out.extend_from_slice(&random);
        let start = out.len();
        out.resize(start + plaintext.len() + TAG_LEN, 0);
        if gcm
            .seal_to(nonce, aad, plaintext, &mut out[start..])
            .is_err()
        {
            out.truncate(base);
            return Err(cipher_failed());
        }
        out.extend_from_slice(&seed.tail);
        Ok(())
    }

    fn open(&self, payload: &[u8], aad: &[u8]) -> Result<Opened, Error> {
        let inner = &*self.inner;
        let object = ObjectRef::decode(payload)?;
        let current = inner.current();
        let key = match &current {
            Some(write) if write.matches(&object) => {
                bump(&inner.counters.cache_hits);
                Arc::clone(&write.read_key)
            }
            _ => inner.read_key(&object)?,
        };
        let plaintext = match (&*key, object.source_type) {
            (ReadKey::Seed(kdf, digest), DekSourceType::HkdfSha256XnonceAesGcmSeed) => {
                inner.open_seed(kdf, digest, object.encrypted_data, aad)?
            }
            (ReadKey::Dek(gcm), DekSourceType::AesGcmKey) => {
                inner.open_gcm(gcm, object.encrypted_data, aad)?
            }
            // The cache key includes the source type, so this cannot happen.
            _ => {
                return Err(DecryptError::Authentication {
                    key: inner.label.clone(),
                }
                .into());
            }
        };
        let stale = object.source_type != DekSourceType::HkdfSha256XnonceAesGcmSeed
            || current.is_some_and(|w| w.key_id != object.key_id);
        Ok(Opened { plaintext, stale })
    }
}
