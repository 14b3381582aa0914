//! A `kms` provider's read path behind a keyring, with an in-process key service of three local
//! key-encryption keys (rotated by the input, so several seeds exist) and a seed cache of two
//! (so reads evict and unwrap again).
//!
//! - Arbitrary bytes after `k8s:enc:kms:v2:fz:` never panic and never read back, unless their
//!   `encryptedData` is that of a value this target wrote, and then only as that value's
//!   plaintext, under its context.
//! - A value we wrote, flipped, truncated, extended, or with its other fields replaced, reads
//!   back only as itself (under the same rule).
//! - Values we write read back exactly, not under another context; `stale` is set exactly when
//!   the value's key id is not the current one; a second read of a value makes no unwrap call.
//! - No error shows a plaintext, a seed or a key-encryption key.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use encrypted_core::kms::{
    DecryptRequest, EncryptResponse, EncryptedObject, KeyService, KeyServiceRegistry, KmsError,
    KmsOptions, KmsProviders, LocalKeyService, Status, Zeroizing,
};
use encrypted_core::{EncryptionConfiguration, Error, Keyring};
use libfuzzer_sys::fuzz_target;

const PREFIX: &[u8] = b"k8s:enc:kms:v2:fz:";
const RESOURCE: &str = "secrets";
const KEKS: [[u8; 32]; 3] = [[0x11; 32], [0x22; 32], [0x33; 32]];
const CANARY: &str = "PLAINTEXT-CANARY";

/// Three local keys; `status` reports the current one's key id.
#[derive(Debug)]
struct Keks {
    services: Vec<LocalKeyService>,
    current: AtomicUsize,
    /// The seeds it wrapped (the most recent ones).
    seeds: Mutex<Vec<Vec<u8>>>,
}

impl Keks {
    fn current(&self) -> &LocalKeyService {
        &self.services[self.current.load(Ordering::Relaxed) % self.services.len()]
    }
}

impl KeyService for Keks {
    fn status(&self) -> Result<Status, Error> {
        Ok(Status::new("v2", "ok", self.current().key_id()))
    }

    fn encrypt(&self, uid: &str, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        let mut seeds = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
        if seeds.len() >= 16 {
            seeds.remove(0);
        }
        seeds.push(plaintext.to_vec());
        self.current().encrypt(uid, plaintext)
    }

    fn decrypt(&self, uid: &str, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self.services.iter().find(|s| s.key_id() == request.key_id) {
            Some(service) => service.decrypt(uid, request),
            None => Err(KmsError::UnwrapRefused {
                reason: "unknown key id".to_owned(),
            }
            .into()),
        }
    }
}

/// A value this target wrote.
struct Written {
    stored: Vec<u8>,
    plaintext: Vec<u8>,
    aad: Vec<u8>,
    key_id: String,
    /// `encryptedData` of its object.
    data: Vec<u8>,
}

struct World {
    keks: Arc<Keks>,
    keyring: Keyring,
    providers: KmsProviders,
    written: Vec<Written>,
}

impl World {
    fn write(&self, plaintext: &[u8], aad: &[u8]) -> Written {
        let stored = self
            .keyring
            .encrypt(RESOURCE, plaintext, aad)
            .expect("the kms provider writes");
        let object = EncryptedObject::decode(&stored[PREFIX.len()..]).expect("we wrote protobuf");
        Written {
            plaintext: plaintext.to_vec(),
            aad: aad.to_vec(),
            key_id: object.key_id,
            data: object.encrypted_data,
            stored,
        }
    }

    fn rotate(&self, to: usize) {
        self.keks.current.store(to, Ordering::Relaxed);
        let kms = self.providers.get("fz").expect("the transformer");
        kms.poll_now().expect("rotation to a local key");
    }

    fn decrypt_calls(&self) -> u64 {
        self.providers
            .get("fz")
            .expect("the transformer")
            .metrics()
            .decrypt_calls
    }

    /// No secret in the error.
    fn check_error(&self, e: &Error, plaintexts: &[&[u8]]) {
        let text = common::describe(e);
        assert!(!text.contains(CANARY), "plaintext in an error: {text}");
        for p in plaintexts {
            assert!(!common::shows(&text, p), "plaintext in an error: {text}");
        }
        for kek in &KEKS {
            assert!(
                !common::shows(&text, kek),
                "key-encryption key in an error: {text}"
            );
        }
        let seeds = self.keks.seeds.lock().unwrap_or_else(|e| e.into_inner());
        for seed in seeds.iter() {
            assert!(!common::shows(&text, seed), "seed in an error: {text}");
        }
    }

    /// Reads `stored` under `aad`: it reads back only as a value we wrote whose
    /// `encryptedData` it carries, with that value's context.
    fn read_arbitrary(&self, stored: &[u8], aad: &[u8]) {
        match self.keyring.decrypt(RESOURCE, stored, aad) {
            Ok(read) => {
                let object = stored
                    .strip_prefix(PREFIX)
                    .and_then(|p| EncryptedObject::decode(p).ok())
                    .expect("what reads is a KMS v2 object");
                let known = self
                    .written
                    .iter()
                    .find(|w| w.data == object.encrypted_data)
                    .unwrap_or_else(|| panic!("forged a KMS value ({} bytes)", stored.len()));
                assert_eq!(read.plaintext, known.plaintext, "wrong plaintext");
                assert_eq!(aad, known.aad, "read under another context");
            }
            Err(e) => self.check_error(&e, &[]),
        }
    }
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let keks = Arc::new(Keks {
        services: KEKS
            .iter()
            .enumerate()
            .map(|(i, k)| LocalKeyService::from_key(k, format!("kek{i}")).expect("a local key"))
            .collect(),
        current: AtomicUsize::new(0),
        seeds: Mutex::new(Vec::new()),
    });
    let service = Arc::clone(&keks);
    let registry = KeyServiceRegistry::empty()
        .register(
            "local://",
            Arc::new(move |_| Ok(Arc::clone(&service) as Arc<dyn KeyService>)),
        )
        .options(
            KmsOptions::default()
                .background_polling(false)
                .seed_cache_capacity(2)
                .derived_key_cache_capacity(8),
        );
    let config = EncryptionConfiguration::from_yaml(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {apiVersion: v2, name: fz, endpoint: 'local://env/FUZZ_UNUSED'}
",
    )
    .expect("fuzz configuration");
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(&config)
        .expect("keyring");
    let mut world = World {
        keks,
        keyring,
        providers: registry.providers(),
        written: Vec::new(),
    };
    // Seeds under keys 0, 1, 2, then 0 again: four seeds, three key ids.
    let mut written = Vec::new();
    for round in 0..4usize {
        world.rotate(round % 3);
        for i in 0..2 {
            let plaintext = format!("{CANARY}-{round}-{i}").into_bytes();
            written.push(world.write(&plaintext, format!("ctx{round}").as_bytes()));
        }
    }
    world.written = written;
    world
});

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let aad: &[u8] = match mode >> 6 {
        0 => b"ctx0",
        1 => b"ctx1",
        2 => b"ctx3",
        _ => b"other",
    };
    match mode % 4 {
        // Arbitrary bytes behind the prefix (and, rarely, without it).
        0 => {
            let stored = if mode & 0x20 == 0 {
                [PREFIX, rest].concat()
            } else {
                rest.to_vec()
            };
            world.read_arbitrary(&stored, aad);
        }
        // A value we wrote, edited.
        1 => {
            let [which, edit, hi, lo, tail @ ..] = rest else {
                return;
            };
            let known = &world.written[usize::from(*which) % world.written.len()];
            let mut stored = known.stored.clone();
            let at = usize::from(u16::from_be_bytes([*hi, *lo])) % stored.len();
            match edit % 4 {
                0 => stored[at] ^= tail.first().copied().unwrap_or(1) | 1,
                1 => stored.truncate(at),
                2 => stored.extend_from_slice(tail),
                // Its `encryptedData` field kept, the other fields replaced by the input.
                _ => {
                    let data_field = 1 + varint_len(known.data.len()) + known.data.len();
                    stored.truncate(PREFIX.len() + data_field);
                    stored.extend_from_slice(tail);
                }
            }
            world.read_arbitrary(&stored, if edit & 4 == 0 { &known.aad } else { aad });
        }
        // A value we write now: reads back exactly, stale only after a rotation, only under its
        // context, and a second read makes no unwrap call.
        2 => {
            let written = world.write(rest, aad);
            for _ in 0..2 {
                let read = world
                    .keyring
                    .decrypt(RESOURCE, &written.stored, aad)
                    .expect("our value reads back");
                assert_eq!(read.plaintext, rest);
                assert!(!read.stale, "a value under the current seed is stale");
            }
            match world.keyring.decrypt(RESOURCE, &written.stored, b"another") {
                Ok(_) => panic!("context not bound"),
                Err(e) => world.check_error(&e, &[rest]),
            }
        }
        // A value written before (under one of four seeds): reads back, `stale` when its key
        // id is not the current one, and a repeated read hits the cache.
        _ => {
            let Some((&which, rest)) = rest.split_first() else {
                return;
            };
            if let Some(&to) = rest.first()
                && to & 0x80 != 0
            {
                world.rotate(usize::from(to));
            }
            let known = &world.written[usize::from(which) % world.written.len()];
            let current = world.keks.current().key_id().to_owned();
            let read = world
                .keyring
                .decrypt(RESOURCE, &known.stored, &known.aad)
                .expect("a value written before reads back");
            assert_eq!(read.plaintext, known.plaintext);
            assert_eq!(read.stale, known.key_id != current, "stale flag");
            let calls = world.decrypt_calls();
            let again = world
                .keyring
                .decrypt(RESOURCE, &known.stored, &known.aad)
                .expect("a second read");
            assert_eq!(again.plaintext, known.plaintext);
            assert_eq!(
                world.decrypt_calls(),
                calls,
                "a repeated read unwrapped again"
            );
        }
    }
});

fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}
