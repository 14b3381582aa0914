//! Re-encryption support: what `#[derive(Encrypted)]` generates so that tools (`status`,
//! `rewrap`) can judge and re-encrypt a model's stored values without knowing the model.
//!
//! [`Rewrap::inspect`] takes the hidden record as loaded (stored values, hash and flag columns),
//! reports each encrypted value's state, and returns the same record re-encrypted with the current
//! write key when any value is stale or plaintext and every value could be read.

use encrypted_core::KeyLabel;

use crate::Error;
use crate::value::Encrypted;

/// The state of one stored value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ValueState {
    /// Written by the current write key.
    Current(KeyLabel),
    /// Readable, but written by another key or provider: re-encrypt it to rotate.
    Stale(KeyLabel),
    /// Plaintext: the row's `encrypted` flag is false, or the value was read through `identity`.
    Plaintext,
    /// No configured key reads it (tampered, truncated, moved, or its key was removed).
    Undecryptable(Error),
}

/// One encrypted column of a loaded row.
#[derive(Debug, Clone)]
pub struct StoredValue {
    /// The column.
    pub column: &'static str,
    /// What the keyring makes of it.
    pub state: ValueState,
}

/// The verdict on one row.
#[derive(Debug)]
pub struct Inspected<R> {
    /// Every non-NULL encrypted value, in field order.
    pub values: Vec<StoredValue>,
    /// The row re-encrypted with the current write key, when a value was stale or plaintext and
    /// every value could be read; `None` when the row is current or has an unreadable value.
    pub rewrapped: Option<R>,
}

/// An encrypted column of a model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column name.
    pub name: &'static str,
    /// True for a `Binary` column (the value binds as bytes), false for `Text`.
    pub binary: bool,
    /// True for a `Nullable` column.
    pub nullable: bool,
}

/// Implemented by `#[derive(Encrypted)]`: inspect and re-encrypt a loaded record.
pub trait Rewrap {
    /// The hidden record: Diesel's `Queryable` + `Selectable` row of the table with stored
    /// (encrypted) values. Load it with `<Model as Rewrap>::Record::as_select()`.
    type Record;
    /// The encrypted columns, in field order.
    const COLUMNS: &'static [Column];
    /// The `encrypted` flag column, if the table has one.
    const FLAG: Option<&'static str>;

    /// Judges every stored value of `record` and re-encrypts it when needed (with the same AAD,
    /// the current write key, and the flag set).
    ///
    /// # Errors
    /// [`Error::NoKeyring`], [`Error::Resource`]; [`Error::Crypto`] when re-encrypting fails.
    /// An unreadable value is not an error: it is reported in [`Inspected::values`].
    fn inspect(record: &Self::Record) -> Result<Inspected<Self::Record>, Error>;

    /// The stored values in [`Rewrap::COLUMNS`] order (`None` for NULL).
    fn stored(record: &Self::Record) -> Vec<Option<&Encrypted>>;

    /// The flag column's value, if the table has one.
    fn flag(record: &Self::Record) -> Option<bool>;
}
