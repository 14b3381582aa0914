#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod check;
pub mod config;
mod error;
mod gcm;
mod keyring;
pub mod kms;
pub mod provider;
mod rng;
mod secret;

// Not an API: entry points for the fuzz targets in `fuzz/` (hidden, outside semver).
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;

pub use check::{CheckOutcome, CheckReport, KeyCheck};
pub use config::EncryptionConfiguration;
pub use error::{
    ConfigError, ConfigErrorKind, DecryptError, EncodingError, EncryptError, Error, KeyLabel,
};
pub use gcm::Engine;
pub use keyring::{
    Decrypted, Keyring, KeyringBuilder, KmsFactory, ResourceKeyring, decode_base64,
    decode_base64_bytes, encode_base64,
};
pub use provider::{Opened, ProviderKind, Transformer};
pub use secret::SecretKey;
