//! The SQL types `src/schema/postgres.rs` names (through `import_types` in `diesel.toml`), chosen
//! so that one set of tables serves PostgreSQL and SQLite.
//!
//! The tables are printed from the PostgreSQL migrations because `diesel print-schema` reads
//! GORM's PostgreSQL DDL exactly (`bigint`, `boolean`, `timestamptz`, `JSONB`, nullability),
//! while on SQLite it cannot: GORM declares booleans `numeric` (printed as `Double`), JSON
//! columns `JSON` (not supported by the printer) and leaves text primary keys nullable. On
//! SQLite the same Diesel types read GORM's values as they are: `Int8` reads SQLite's 64-bit
//! `integer`, `Bool` the 0/1 GORM writes into `numeric`, `Bytea` (= `Binary`) a `blob`, `Text`
//! text. Two types need one definition per backend and are defined here:
//!
//! - [`Timestamptz`]: GORM's `time.Time`. PostgreSQL `timestamptz`, exactly Diesel's
//!   [`diesel::sql_types::Timestamptz`]. SQLite `datetime`: text in the format Obot's driver
//!   writes (`github.com/glebarez/go-sqlite` v1.22.0 `formatTime`, Go layout
//!   `2006-01-02 15:04:05.999999999-07:00`, e.g. `2026-08-21 17:56:09.123456789-04:00`; Go's
//!   zero time `0001-01-01 00:00:00+00:00`), read with its offset and written in UTC with
//!   `+00:00`, the same layout, which that driver parses back (Diesel's `TimestamptzSqlite`).
//!   Rust type: [`GoTime`].
//! - [`Jsonb`]: GORM's `datatypes.JSONSlice`. PostgreSQL `jsonb` (Diesel's
//!   [`diesel::sql_types::Jsonb`]); SQLite `JSON`: JSON text (Diesel's
//!   [`diesel::sql_types::Json`]; not Diesel's SQLite `Jsonb`, which is SQLite's binary JSONB
//!   format, not what GORM writes). Rust type: [`GoJson`].
//!
//! The Rust types are newtypes ([`GoTime`] around `chrono::DateTime<Utc>`, [`GoJson`] around
//! `serde_json::Value`) because Rust's coherence rules forbid a crate other than Diesel to
//! implement `AsExpression` for another crate's type.

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, Output, ToSql};
use diesel::sqlite::Sqlite;

pub use diesel::sql_types::{Bool, Bytea, Int8, Nullable, Text};

/// GORM's `time.Time`: `timestamptz` on PostgreSQL, Go-formatted `datetime` text on SQLite
/// (see the [module](self)).
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Timestamptz;

// `diesel::table!` gives columns of a type named `Timestamptz` `+` and `-` with an interval, as
// for Diesel's own type; the same here (PostgreSQL's `timestamptz + interval`).
impl diesel::sql_types::ops::Add for Timestamptz {
    type Rhs = diesel::sql_types::Interval;
    type Output = Timestamptz;
}

impl diesel::sql_types::ops::Sub for Timestamptz {
    type Rhs = diesel::sql_types::Interval;
    type Output = Timestamptz;
}

/// GORM's `datatypes.JSONSlice`: `jsonb` on PostgreSQL, JSON text on SQLite (see the
/// [module](self)).
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Jsonb;

/// A GORM `time.Time` value: a [`Timestamptz`] column's Rust type.
///
/// ```
/// use obot_store::schema::types::GoTime;
/// let t: GoTime = chrono::DateTime::UNIX_EPOCH.into();
/// assert_eq!(t.0.timestamp(), 0);
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Timestamptz)]
pub struct GoTime(pub DateTime<Utc>);

impl From<DateTime<Utc>> for GoTime {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl From<GoTime> for DateTime<Utc> {
    fn from(t: GoTime) -> Self {
        t.0
    }
}

/// A GORM `datatypes.JSONSlice` value: a [`Jsonb`] column's Rust type.
#[derive(
    Debug, Clone, PartialEq, Eq, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Jsonb)]
pub struct GoJson(pub serde_json::Value);

impl From<serde_json::Value> for GoJson {
    fn from(v: serde_json::Value) -> Self {
        Self(v)
    }
}

/// `FromSql` and `ToSql` of the newtype `$rust` for `$sql` on `$db`, as Diesel's own impls of
/// its content for `$via`.
macro_rules! delegate {
    ($rust:ident($inner:ty), $sql:ty, $db:ty, $via:ty) => {
        impl FromSql<$sql, $db> for $rust {
            fn from_sql(
                value: <$db as diesel::backend::Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                <$inner as FromSql<$via, $db>>::from_sql(value).map($rust)
            }
        }
        impl ToSql<$sql, $db> for $rust {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, $db>) -> serialize::Result {
                <$inner as ToSql<$via, $db>>::to_sql(&self.0, out)
            }
        }
    };
}

delegate!(
    GoTime(DateTime<Utc>),
    Timestamptz,
    Pg,
    diesel::sql_types::Timestamptz
);
delegate!(
    GoTime(DateTime<Utc>),
    Timestamptz,
    Sqlite,
    diesel::sql_types::TimestamptzSqlite
);
delegate!(
    GoJson(serde_json::Value),
    Jsonb,
    Pg,
    diesel::sql_types::Jsonb
);
delegate!(
    GoJson(serde_json::Value),
    Jsonb,
    Sqlite,
    diesel::sql_types::Json
);

// `#[encrypt(each)]` columns of this JSON type (Obot's `git_remotes`): the encrypted list binds
// and reads as Diesel's `Jsonb` on PostgreSQL and `Json` (text) on SQLite, as `GoJson` does.
encrypted_diesel::list_column_type!(Jsonb,
    Pg => diesel::sql_types::Jsonb,
    Sqlite => diesel::sql_types::Json);
