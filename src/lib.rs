//! Obot's data layer with encrypted fields: resource models, migrations and the operator CLI.
//!
//! The CLI (`obot-store`) manages `EncryptionConfiguration` files and encrypts or decrypts single
//! values exactly as Obot stores them (standard padded base64 of the Kubernetes transformer
//! output). See the repository README for the commands.

#![forbid(unsafe_code)]

pub mod cli;
