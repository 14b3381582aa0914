#![cfg_attr(
    all(feature = "sqlite", feature = "postgres", feature = "mysql"),
    doc = include_str!("../README.md")
)]
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "mysql")),
    doc = "Diesel models with fields encrypted at rest (build the docs with the `sqlite`, \
           `postgres` and `mysql` features for the guide and its examples)."
)]
#![forbid(unsafe_code)]

pub mod backend;
mod error;
pub mod hash;
mod keys;
mod load;
pub mod rewrap;
mod value;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use encrypted_derive::Encrypted;
pub use error::Error;
pub use keys::{Keys, Scoped, current, install, install_checked, scope, with_keyring};
pub use load::{LoadDecrypted, Model, decrypt_all, encrypt_all, encrypt_chunks};
pub use rewrap::Rewrap;
pub use value::Encrypted as EncryptedValue;
