#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod backend;
mod error;
pub mod hash;
mod keys;
mod load;
mod lookup;
pub mod rotate;
mod value;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use encrypted_derive::Encrypted;
pub use error::Error;
pub use keys::{Keys, Scoped, current, install, install_checked, scope, with_keyring};
pub use load::{LoadDecrypted, Model, decrypt_all, encrypt_all, encrypt_chunks};
pub use lookup::{LEGACY_SHA256, LookupKey, LookupKeys};
pub use value::{Encrypted as EncryptedValue, EncryptedList, ListSqlType};

// What a user configures, so that `encrypted-diesel` is the only dependency to add: the
// configuration, the keyring, key generation, the errors and the KMS pieces. The whole crate is
// there too, as `encrypted_diesel::encrypted_core`.
pub use encrypted_core;
pub use encrypted_core::config::{self, generate_aesgcm};
pub use encrypted_core::kms;
pub use encrypted_core::{
    CheckOutcome, CheckReport, ConfigError, ConfigErrorKind, DecryptError, EncodingError,
    EncryptError, EncryptionConfiguration, Error as CoreError, KeyCheck, KeyLabel, Keyring,
    KeyringBuilder, KmsFactory, ResourceKeyring, SecretKey, decode_base64, decode_base64_bytes,
    encode_base64,
};

// The derive emits one impl per backend (and per async connection); these macros keep an impl
// when `encrypted-diesel` has the backend's feature and drop it otherwise, so a model compiles
// whatever backends are enabled.
#[cfg(feature = "postgres")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_postgres {
    ($($t:tt)*) => { $($t)* };
}
#[cfg(not(feature = "postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_postgres {
    ($($t:tt)*) => {};
}

#[cfg(feature = "sqlite")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_sqlite {
    ($($t:tt)*) => { $($t)* };
}
#[cfg(not(feature = "sqlite"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_sqlite {
    ($($t:tt)*) => {};
}

#[cfg(feature = "mysql")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_mysql {
    ($($t:tt)*) => { $($t)* };
}
#[cfg(not(feature = "mysql"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_mysql {
    ($($t:tt)*) => {};
}

#[cfg(all(feature = "async", feature = "postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_async_postgres {
    ($($t:tt)*) => { $($t)* };
}
#[cfg(not(all(feature = "async", feature = "postgres")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_async_postgres {
    ($($t:tt)*) => {};
}

#[cfg(all(feature = "async", feature = "sqlite"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_async_sqlite {
    ($($t:tt)*) => { $($t)* };
}
#[cfg(not(all(feature = "async", feature = "sqlite")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_async_sqlite {
    ($($t:tt)*) => {};
}

#[cfg(all(feature = "async", feature = "mysql"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_async_mysql {
    ($($t:tt)*) => { $($t)* };
}
#[cfg(not(all(feature = "async", feature = "mysql")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_async_mysql {
    ($($t:tt)*) => {};
}

/// Makes a JSON SQL type of your own (a `#[derive(SqlType)]` type, e.g. one type that is `jsonb`
/// on PostgreSQL and JSON text on SQLite) usable by `#[encrypt(each)]` columns: the list is
/// bound and read as Diesel's own JSON type of each backend you name.
///
/// ```ignore
/// encrypted_diesel::list_column_type!(crate::schema::types::Jsonb,
///     diesel::pg::Pg => diesel::sql_types::Jsonb,
///     diesel::sqlite::Sqlite => diesel::sql_types::Json);
/// ```
#[macro_export]
macro_rules! list_column_type {
    ($ty:ty, $($db:ty => $via:ty),+ $(,)?) => {
        const _: () = {
            use $crate::__private::diesel as __d;
            use $crate::EncryptedList as __List;

            impl $crate::__private::StoredAs for $ty {
                type Value = __List;
            }
            impl $crate::__private::ListColumn for $ty {}
            impl $crate::__private::ColumnKind for $ty {
                const BINARY: bool = false;
                const NULLABLE: bool = false;
            }
            impl $crate::ListSqlType for $ty {}
            $(
                impl __d::serialize::ToSql<$ty, $db> for __List {
                    fn to_sql<'__b>(
                        &'__b self,
                        out: &mut __d::serialize::Output<'__b, '_, $db>,
                    ) -> __d::serialize::Result {
                        <__List as __d::serialize::ToSql<$via, $db>>::to_sql(self, out)
                    }
                }
                impl __d::deserialize::FromSql<$ty, $db> for __List {
                    fn from_sql(
                        bytes: <$db as __d::backend::Backend>::RawValue<'_>,
                    ) -> __d::deserialize::Result<Self> {
                        <__List as __d::deserialize::FromSql<$via, $db>>::from_sql(bytes)
                    }
                }
            )+
        };
    };
}
