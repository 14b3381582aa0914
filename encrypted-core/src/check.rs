//! [`Keyring::check`](crate::Keyring::check): a health check that encrypts and decrypts with
//! every configured key.

use std::fmt;

use crate::{Error, KeyLabel};

/// How one key fared in [`Keyring::check`](crate::Keyring::check).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CheckOutcome {
    /// A random value encrypted with this key was read back through the resource's chain by
    /// this key (and, for `kms`, the key service answered `status` and unwrapped the current
    /// seed, bypassing every cache).
    Ok,
    /// Nothing to test: `identity` stores plaintext.
    NotTestable {
        /// Why.
        reason: &'static str,
    },
    /// Encrypting, decrypting or the key service failed.
    Failed {
        /// What failed (names the provider and key; never key bytes).
        error: Error,
    },
    /// The value read back differs from what was written, or another key read it: two keys
    /// of the chain share a prefix, or a cipher is broken.
    Mismatch {
        /// The key that read the value.
        read_by: KeyLabel,
    },
}

impl CheckOutcome {
    /// True unless the check failed ([`Failed`](Self::Failed) or [`Mismatch`](Self::Mismatch)).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckOutcome::Ok | CheckOutcome::NotTestable { .. })
    }
}

/// One key of one resource entry, checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyCheck {
    /// The entry, as configuration errors name it:
    /// `resources[0] (credentials, users.obot.obot.ai, +5 more)`.
    pub entry: String,
    /// The key.
    pub key: KeyLabel,
    /// Whether it is the entry's write key (the first key of the first provider).
    pub writes: bool,
    /// What the check found.
    pub outcome: CheckOutcome,
}

impl fmt::Display for KeyCheck {
    /// `resources[0] (users.obot.obot.ai): aesgcm key "key1" (writes): ok`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.writes { "writes" } else { "reads" };
        write!(f, "{}: {} ({role}): ", self.entry, self.key)?;
        match &self.outcome {
            CheckOutcome::Ok => f.write_str("ok"),
            CheckOutcome::NotTestable { reason } => write!(f, "not testable ({reason})"),
            CheckOutcome::Failed { error } => write!(f, "FAILED: {error}"),
            CheckOutcome::Mismatch { read_by } => write!(
                f,
                "FAILED: the value written with it was read back wrong or by {read_by}"
            ),
        }
    }
}

/// The result of [`Keyring::check`](crate::Keyring::check): every key of every resource entry,
/// in configuration order. Its `Display` prints one line per key.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// Every key checked.
    pub keys: Vec<KeyCheck>,
}

impl CheckReport {
    /// True when no key failed.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.keys.iter().all(|k| k.outcome.is_ok())
    }

    /// The keys that failed.
    pub fn failures(&self) -> impl Iterator<Item = &KeyCheck> {
        self.keys.iter().filter(|k| !k.outcome.is_ok())
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for key in &self.keys {
            writeln!(f, "{key}")?;
        }
        Ok(())
    }
}
