//! KMS v2 envelope encryption (seed mode) beside the static `aesgcm` provider, per value size,
//! both through a `ResourceKeyring` built from one configuration.
//!
//! `cargo bench -p encrypted-core --bench kms -- --warm-up-time 1 --measurement-time 3` prints
//! criterion's rows, then a summary table from a separate, interleaved `Instant` timing of the
//! same closures (median of several batches) with the kms/aesgcm ratio. Add a filter that
//! matches nothing (`-- zzz`) for the summary alone.
//!
//! What the difference measures: per value, seed mode draws 44 random bytes instead of 12, runs
//! HKDF-Expand-SHA256 (one HMAC) and expands a fresh AES-256 key, and encodes or decodes the
//! protobuf `EncryptedObject` (about 60 more bytes per value with the local key service). The key
//! service is not called per value: its seed is wrapped once at start-up and cached for reads.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use encrypted_core::kms::{KmsOptions, factory};
use encrypted_core::{EncryptionConfiguration, Keyring, ResourceKeyring};

const AAD: &[u8] =
    b"users.obot.obot.ai/2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
const SIZES: [(usize, &str); 3] = [(32, "32 B"), (1024, "1 KiB"), (64 * 1024, "64 KiB")];

struct Setup {
    aesgcm: std::sync::Arc<ResourceKeyring>,
    kms: std::sync::Arc<ResourceKeyring>,
    /// The same provider without the per-value key cache: every read runs HKDF.
    kms_uncached: std::sync::Arc<ResourceKeyring>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyfile = dir.path().join("kek");
    std::fs::write(&keyfile, encrypted_core::encode_base64(&[0x42; 32])).expect("key file");
    let aes_key = encrypted_core::encode_base64(&[0x24; 32]);
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [users.obot.obot.ai]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: {aes_key}
  - resources: [kms.bench]
    providers:
      - kms:
          apiVersion: v2
          name: bench
          endpoint: local://{}
",
        keyfile.display()
    );
    let config = EncryptionConfiguration::from_yaml(&yaml).expect("bench configuration");
    let keyring = Keyring::builder()
        .kms(factory(KmsOptions::default().background_polling(false)))
        .build(&config)
        .expect("keyring");
    let uncached = Keyring::builder()
        .kms(factory(
            KmsOptions::default()
                .background_polling(false)
                .derived_key_cache_capacity(0),
        ))
        .build(&config)
        .expect("keyring");
    Setup {
        aesgcm: keyring.resource("users.obot.obot.ai").expect("aesgcm"),
        kms: keyring.resource("kms.bench").expect("kms"),
        kms_uncached: uncached.resource("kms.bench").expect("kms"),
        _dir: dir,
    }
}

fn criterion_rows(c: &mut Criterion, s: &Setup) {
    for (size, label) in SIZES {
        let plaintext = vec![0x5a; size];
        let sealed_aes = s.aesgcm.encrypt(&plaintext, AAD).expect("seal");
        let sealed_kms = s.kms.encrypt(&plaintext, AAD).expect("seal");
        let mut group = c.benchmark_group(format!("kms_vs_aesgcm/{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("aesgcm encrypt", |b| {
            b.iter(|| s.aesgcm.encrypt(black_box(&plaintext), AAD))
        });
        group.bench_function("kms encrypt", |b| {
            b.iter(|| s.kms.encrypt(black_box(&plaintext), AAD))
        });
        group.bench_function("aesgcm decrypt", |b| {
            b.iter(|| s.aesgcm.decrypt(black_box(&sealed_aes), AAD))
        });
        group.bench_function("kms decrypt", |b| {
            b.iter(|| s.kms.decrypt(black_box(&sealed_kms), AAD))
        });
        group.bench_function("kms decrypt (no per-value key cache)", |b| {
            b.iter(|| s.kms_uncached.decrypt(black_box(&sealed_kms), AAD))
        });
        group.finish();
    }
}

/// ns per call: the median of `batches` batches, the closures interleaved batch by batch.
fn interleaved(batches: usize, per_batch: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(batches); fs.len()];
    for _ in 0..batches {
        for (i, f) in fs.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / per_batch as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

fn summary(s: &Setup) {
    println!();
    println!("kms (seed mode) vs aesgcm, ns per value through ResourceKeyring (median of batches)");
    println!("kms dec: the same value read again (per-value key cached); nokc: cache off (HKDF)");
    println!(
        "{:>7} | {:>10} {:>10} {:>6} | {:>10} {:>10} {:>6} {:>13} {:>6}",
        "size",
        "aesgcm enc",
        "kms enc",
        "ratio",
        "aesgcm dec",
        "kms dec",
        "ratio",
        "kms dec nokc",
        "ratio"
    );
    for (size, label) in SIZES {
        let plaintext = vec![0x5a; size];
        let sealed_aes = s.aesgcm.encrypt(&plaintext, AAD).expect("seal");
        let sealed_kms = s.kms.encrypt(&plaintext, AAD).expect("seal");
        let per_batch = if size > 4096 { 200 } else { 5_000 };
        let t = interleaved(
            15,
            per_batch,
            &mut [
                &mut || drop(black_box(s.aesgcm.encrypt(black_box(&plaintext), AAD))),
                &mut || drop(black_box(s.kms.encrypt(black_box(&plaintext), AAD))),
                &mut || drop(black_box(s.aesgcm.decrypt(black_box(&sealed_aes), AAD))),
                &mut || drop(black_box(s.kms.decrypt(black_box(&sealed_kms), AAD))),
                &mut || {
                    drop(black_box(
                        s.kms_uncached.decrypt(black_box(&sealed_kms), AAD),
                    ))
                },
            ],
        );
        println!(
            "{label:>7} | {:>10.0} {:>10.0} {:>5.2}x | {:>10.0} {:>10.0} {:>5.2}x {:>13.0} {:>5.2}x",
            t[0],
            t[1],
            t[1] / t[0],
            t[2],
            t[3],
            t[3] / t[2],
            t[4],
            t[4] / t[2]
        );
    }
    println!(
        "stored size for a 32 B value: aesgcm {} B, kms {} B",
        s.aesgcm.encrypt(&[0; 32], AAD).map_or(0, |v| v.len()),
        s.kms.encrypt(&[0; 32], AAD).map_or(0, |v| v.len())
    );
}

fn main() {
    let s = setup();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_rows(&mut c, &s);
    c.final_summary();
    summary(&s);
}
