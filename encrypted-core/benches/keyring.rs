//! Keyring encryption against bare aws-lc-rs AES-256-GCM, side by side per value size.
//!
//! `cargo bench -p encrypted-core --bench keyring [--features rustcrypto] -- --warm-up-time 1
//! --measurement-time 3` prints criterion's rows, then a summary table from a separate,
//! interleaved `Instant` timing of the very same closures (median of several batches). Add a
//! filter that matches nothing (`-- zzz`) for the summary alone.
//!
//! What the baseline excludes: `RandomizedNonceKey::seal_in_place_separate_tag` encrypts a
//! buffer that is already filled and sized, so it has no allocation, no copy of the plaintext,
//! no `k8s:enc:aesgcm:v1:<name>:` prefix and no assembling of `nonce ‖ ct ‖ tag` (it does draw the
//! random nonce, one call to aws-lc's generator per value, as `RandomizedNonceKey` does). A
//! second baseline, the cipher-only seal, uses a counter nonce: the AES-GCM cost alone. The
//! keyring draws nonces from a per-thread pool (see `encrypted-core/src/rng.rs`), so it can be
//! faster than the first baseline; the second shows what it costs over the bare cipher. The bare
//! open is `LessSafeKey::open_separate_gather` into a pre-allocated
//! buffer (no allocation, no prefix matching). `ResourceKeyring` does all of that per value.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, RandomizedNonceKey, UnboundKey};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use encrypted_core::{EncryptionConfiguration, Keyring, ResourceKeyring};

/// The 32-byte key of every provider (base64 of 0x00..0x1f).
const KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const AAD: &[u8] =
    b"users.obot.obot.ai/2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
const SIZES: [(usize, &str); 3] = [(32, "32 B"), (1024, "1 KiB"), (64 * 1024, "64 KiB")];

fn config() -> EncryptionConfiguration {
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [users.obot.obot.ai]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: {KEY_B64}
      - identity: {{}}
  - resources: [secretbox.bench]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: {KEY_B64}
"
    );
    EncryptionConfiguration::from_yaml(&yaml).expect("bench configuration")
}

/// ns per call of one closure in the summary timing.
#[derive(Default, Clone, Copy)]
struct Stat {
    /// Median of the batches: what the table shows.
    median: f64,
    /// Fastest batch: a cross-check that other processes on the machine barely move.
    min: f64,
}

/// The summary timing of one size.
#[derive(Default)]
struct Row {
    size: usize,
    label: &'static str,
    seal: Stat,
    encrypt: Stat,
    encrypt_b64: Stat,
    open: Stat,
    decrypt: Stat,
    decrypt_b64: Stat,
    extras: Vec<(&'static str, Stat)>,
}

/// The seal with a counter nonce: the cipher alone, without drawing a random nonce.
const CIPHER_ONLY: &str = "cipher-only seal (counter nonce, aws-lc-rs)";

/// Batches per closure in the summary timing, and the length of one batch.
const ROUNDS: usize = 51;
const BATCH: Duration = Duration::from_millis(1);

/// A closure timed by the summary: runs it `n` times and returns the elapsed time.
type Runner<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

fn runner<'a, R>(mut f: impl FnMut() -> R + 'a) -> Runner<'a> {
    Box::new(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        start.elapsed()
    })
}

/// Registers `f` with criterion and keeps it for the summary timing.
fn case<'a, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    cases: &mut Vec<(&'static str, Runner<'a>)>,
    name: &'static str,
    mut f: impl FnMut() -> R + 'a,
) {
    group.bench_function(name, |b| b.iter(&mut f));
    cases.push((name, runner(f)));
}

/// ns per call of each case, batches of each case interleaved so that drift (other builds on
/// the machine, frequency changes) hits all of them alike.
fn summary_timing(cases: &mut [(&'static str, Runner<'_>)]) -> Vec<Stat> {
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|(_, run)| {
            let mut n = 1u64;
            loop {
                let t = run(n);
                if t >= BATCH / 4 {
                    let per = t.as_secs_f64() / n as f64;
                    break ((BATCH.as_secs_f64() / per) as u64).max(1);
                }
                n *= 2;
            }
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, run)) in cases.iter_mut().enumerate() {
            let t = run(iters[i]);
            samples[i].push(t.as_secs_f64() * 1e9 / iters[i] as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            Stat {
                median: s[s.len() / 2],
                min: s[0],
            }
        })
        .collect()
}

fn bench_size(
    c: &mut Criterion,
    keyring: &Keyring,
    #[cfg(feature = "rustcrypto")] rustcrypto: &Keyring,
    size: usize,
    label: &'static str,
    summary: bool,
) -> Row {
    let plaintext: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
    let users: std::sync::Arc<ResourceKeyring> =
        keyring.resource("users.obot.obot.ai").expect("resource");
    let secretbox = keyring.resource("secretbox.bench").expect("resource");

    let seal_key = RandomizedNonceKey::new(&AES_256_GCM, &KEY).expect("key");
    let open_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).expect("key"));
    let mut seal_buf = plaintext.clone();
    let mut cipher_buf = plaintext.clone();
    let mut counter = 0u64;
    let mut sealed = plaintext.clone();
    let (nonce, tag) = seal_key
        .seal_in_place_separate_tag(Aad::from(AAD), &mut sealed)
        .expect("seal");
    let nonce: [u8; 12] = *nonce.as_ref();
    let tag: [u8; 16] = tag.as_ref().try_into().expect("tag");
    let mut open_buf = vec![0u8; size];

    let stored = users.encrypt(&plaintext, AAD).expect("encrypt");
    let text = users.encrypt_base64(&plaintext, AAD).expect("encrypt");
    let sb_stored = secretbox.encrypt(&plaintext, AAD).expect("encrypt");
    #[cfg(feature = "rustcrypto")]
    let rc_users = rustcrypto.resource("users.obot.obot.ai").expect("resource");
    #[cfg(feature = "rustcrypto")]
    let rc_stored = rc_users.encrypt(&plaintext, AAD).expect("encrypt");
    assert_eq!(
        users.decrypt(&stored, AAD).expect("decrypt").plaintext,
        plaintext
    );

    let mut group = c.benchmark_group(format!("aesgcm/{label}"));
    group.throughput(Throughput::Bytes(size as u64));
    let mut cases = Vec::new();
    case(&mut group, &mut cases, "baseline seal (aws-lc-rs)", || {
        seal_key
            .seal_in_place_separate_tag(Aad::from(black_box(AAD)), black_box(&mut seal_buf))
            .expect("seal")
    });
    case(&mut group, &mut cases, CIPHER_ONLY, || {
        counter += 1;
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_be_bytes());
        open_key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(n),
                Aad::from(black_box(AAD)),
                black_box(&mut cipher_buf),
            )
            .expect("seal")
    });
    case(&mut group, &mut cases, "encrypt", || {
        users
            .encrypt(black_box(&plaintext), black_box(AAD))
            .expect("encrypt")
    });
    case(&mut group, &mut cases, "encrypt_base64", || {
        users
            .encrypt_base64(black_box(&plaintext), black_box(AAD))
            .expect("encrypt")
    });
    case(&mut group, &mut cases, "baseline open (aws-lc-rs)", || {
        open_key
            .open_separate_gather(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(black_box(AAD)),
                black_box(&sealed),
                &tag,
                black_box(&mut open_buf),
            )
            .expect("open");
    });
    case(&mut group, &mut cases, "decrypt", || {
        users
            .decrypt(black_box(&stored), black_box(AAD))
            .expect("decrypt")
    });
    case(&mut group, &mut cases, "decrypt_base64", || {
        users
            .decrypt_base64(black_box(&text), black_box(AAD))
            .expect("decrypt")
    });
    #[cfg(feature = "rustcrypto")]
    {
        case(&mut group, &mut cases, "rustcrypto encrypt", || {
            rc_users
                .encrypt(black_box(&plaintext), black_box(AAD))
                .expect("encrypt")
        });
        case(&mut group, &mut cases, "rustcrypto decrypt", || {
            rc_users
                .decrypt(black_box(&rc_stored), black_box(AAD))
                .expect("decrypt")
        });
    }
    case(&mut group, &mut cases, "secretbox encrypt", || {
        secretbox
            .encrypt(black_box(&plaintext), black_box(AAD))
            .expect("encrypt")
    });
    case(&mut group, &mut cases, "secretbox decrypt", || {
        secretbox
            .decrypt(black_box(&sb_stored), black_box(AAD))
            .expect("decrypt")
    });
    group.finish();

    let mut row = Row {
        size,
        label,
        ..Row::default()
    };
    if summary {
        let medians = summary_timing(&mut cases);
        for ((name, _), ns) in cases.iter().zip(medians) {
            match *name {
                "baseline seal (aws-lc-rs)" => row.seal = ns,
                "encrypt" => row.encrypt = ns,
                "encrypt_base64" => row.encrypt_b64 = ns,
                "baseline open (aws-lc-rs)" => row.open = ns,
                "decrypt" => row.decrypt = ns,
                "decrypt_base64" => row.decrypt_b64 = ns,
                other => row.extras.push((other, ns)),
            }
        }
    }
    row
}

fn print_summary(rows: &[Row]) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    println!();
    println!(
        "summary: median ns per value of {ROUNDS} interleaved ~{} ms batches (std::time::Instant), \
         ratio = ours / bare aws-lc-rs; load average {load} on {} cpus",
        BATCH.as_millis(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    println!(
        "{:>7} | {:>10} {:>10} {:>6} {:>10} {:>6} | {:>10} {:>10} {:>6} {:>10} {:>6}",
        "size",
        "bare seal",
        "encrypt",
        "ratio",
        "enc b64",
        "ratio",
        "bare open",
        "decrypt",
        "ratio",
        "dec b64",
        "ratio"
    );
    for r in rows {
        let (seal, open) = (r.seal.median, r.open.median);
        println!(
            "{:>7} | {:>10.1} {:>10.1} {:>5.2}x {:>10.1} {:>5.2}x | {:>10.1} {:>10.1} {:>5.2}x {:>10.1} {:>5.2}x",
            r.label,
            seal,
            r.encrypt.median,
            r.encrypt.median / seal,
            r.encrypt_b64.median,
            r.encrypt_b64.median / seal,
            open,
            r.decrypt.median,
            r.decrypt.median / open,
            r.decrypt_b64.median,
            r.decrypt_b64.median / open,
        );
    }
    for r in rows {
        let extras: Vec<String> = r
            .extras
            .iter()
            .map(|(name, st)| format!("{name} {:.1} ns", st.median))
            .collect();
        if !extras.is_empty() {
            println!("{:>7} | {}", r.label, extras.join(", "));
        }
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    if let Some(small) = rows.iter().find(|r| r.size == 32) {
        let ratio = small.encrypt.median / small.seal.median;
        println!(
            "target 32 B encrypt <= 1.5x bare seal: {ratio:.2}x -> {} (fastest batches: {:.2}x)",
            verdict(ratio <= 1.5),
            small.encrypt.min / small.seal.min,
        );
    }
    for r in rows {
        if let Some((_, cipher)) = r.extras.iter().find(|(name, _)| *name == CIPHER_ONLY) {
            println!(
                "{:>7} | encrypt {:.1} ns vs cipher-only seal {:.1} ns (no random nonce drawn): {:.2}x",
                r.label,
                r.encrypt.median,
                cipher.median,
                r.encrypt.median / cipher.median
            );
        }
    }
    if let Some(big) = rows.iter().find(|r| r.size == 64 * 1024) {
        // Bytes per ns = GB/s.
        let gbps = |st: Stat| big.size as f64 / st.median;
        let (ours, base) = (gbps(big.encrypt), gbps(big.seal));
        let pct = 100.0 * ours / base;
        println!(
            "target 64 KiB encrypt >= 80% of bare seal throughput: {ours:.2} GB/s vs {base:.2} GB/s \
             = {pct:.0}% -> {} (fastest batches: {:.0}%)",
            verdict(pct >= 80.0),
            100.0 * big.seal.min / big.encrypt.min,
        );
        println!(
            "64 KiB: encrypt_base64 {:.2} GB/s ({:.0}% of bare seal), decrypt {:.2} GB/s ({:.0}% of \
             bare open {:.2} GB/s), decrypt_base64 {:.2} GB/s",
            gbps(big.encrypt_b64),
            100.0 * gbps(big.encrypt_b64) / base,
            gbps(big.decrypt),
            100.0 * gbps(big.decrypt) / gbps(big.open),
            gbps(big.open),
            gbps(big.decrypt_b64),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion then runs each
    // closure once as a test, and the summary timing is skipped). A filter that matches nothing
    // (`-- zzz`) skips criterion's rows and prints only the summary.
    let summary =
        std::env::args().any(|a| a == "--bench") && !std::env::args().any(|a| a == "--list");
    let mut c = Criterion::default().configure_from_args();
    let config = config();
    let keyring = Keyring::from_config(&config).expect("keyring");
    #[cfg(feature = "rustcrypto")]
    let rustcrypto = Keyring::builder()
        .engine(encrypted_core::Engine::RustCrypto)
        .build(&config)
        .expect("keyring");
    let rows: Vec<Row> = SIZES
        .iter()
        .map(|&(size, label)| {
            bench_size(
                &mut c,
                &keyring,
                #[cfg(feature = "rustcrypto")]
                &rustcrypto,
                size,
                label,
                summary,
            )
        })
        .collect();
    c.final_summary();
    if summary {
        print_summary(&rows);
    }
}
