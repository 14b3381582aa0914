//! The SQL pieces of the engine: row-value comparisons for keyset pagination, and what each
//! kind of connection offers (transactions, row locks).

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::Bool;
use diesel::{QueryResult, SelectableExpression};

use super::Locks;
use crate::Error;

macro_rules! row_comparison {
    ($name:ident, $op:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Both sides are tuples: `(k1, k2)` of columns and `(v1, v2)` of bound values, so the
        /// statement reads `(k1, k2) > ($1, $2)`, which PostgreSQL, SQLite and MySQL compare
        /// lexicographically and answer from the key's index.
        #[derive(Debug, Clone, Copy, QueryId, ValidGrouping)]
        pub struct $name<L, R> {
            left: L,
            right: R,
        }

        impl<L, R> $name<L, R> {
            /// `left <op> right`.
            pub fn new(left: L, right: R) -> Self {
                Self { left, right }
            }
        }

        impl<L, R> Expression for $name<L, R>
        where
            L: Expression,
            R: Expression,
        {
            type SqlType = Bool;
        }

        impl<L, R, DB> QueryFragment<DB> for $name<L, R>
        where
            DB: Backend,
            L: QueryFragment<DB>,
            R: QueryFragment<DB>,
        {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
                out.push_sql("(");
                self.left.walk_ast(out.reborrow())?;
                out.push_sql(concat!(") ", $op, " ("));
                self.right.walk_ast(out.reborrow())?;
                out.push_sql(")");
                Ok(())
            }
        }

        impl<L, R, QS> AppearsOnTable<QS> for $name<L, R>
        where
            L: AppearsOnTable<QS>,
            R: AppearsOnTable<QS>,
            Self: Expression,
        {
        }

        impl<L, R, QS> SelectableExpression<QS> for $name<L, R>
        where
            L: SelectableExpression<QS>,
            R: SelectableExpression<QS>,
            Self: AppearsOnTable<QS>,
        {
        }
    };
}

row_comparison!(RowGt, ">", "`(left) > (right)`: the rows after a key.");
row_comparison!(RowLe, "<=", "`(left) <= (right)`: the rows up to a key.");

/// What the engine needs of a connection: a transaction per batch and the server's row locks.
/// Implemented for `PgConnection`, `SqliteConnection` and `MysqlConnection` (with the crate
/// features of the same names).
pub trait Session: Sized {
    /// What the server offers to keep a row unchanged between read and write.
    ///
    /// # Errors
    /// Database errors.
    fn locks(&mut self) -> QueryResult<Locks>;

    /// Runs `f` in a transaction; with `write`, one that holds the database's write lock from
    /// the start where the database has no row locks (SQLite's `BEGIN IMMEDIATE`).
    ///
    /// # Errors
    /// `f`'s error, or the database's.
    fn batch<R>(
        &mut self,
        write: bool,
        f: impl FnOnce(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error>;
}

#[cfg(feature = "postgres")]
impl Session for diesel::PgConnection {
    fn locks(&mut self) -> QueryResult<Locks> {
        Ok(Locks::SkipLocked)
    }

    fn batch<R>(
        &mut self,
        _write: bool,
        f: impl FnOnce(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error> {
        diesel::Connection::transaction(self, f)
    }
}

#[cfg(feature = "sqlite")]
impl Session for diesel::SqliteConnection {
    fn locks(&mut self) -> QueryResult<Locks> {
        Ok(Locks::WriteLock)
    }

    fn batch<R>(
        &mut self,
        write: bool,
        f: impl FnOnce(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if write {
            self.immediate_transaction(f)
        } else {
            diesel::Connection::transaction(self, f)
        }
    }
}

#[cfg(feature = "mysql")]
impl Session for diesel::MysqlConnection {
    fn locks(&mut self) -> QueryResult<Locks> {
        use diesel::RunQueryDsl;
        let version: String =
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("VERSION()"))
                .get_result(self)?;
        Ok(mysql_locks(&version))
    }

    fn batch<R>(
        &mut self,
        _write: bool,
        f: impl FnOnce(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error> {
        diesel::Connection::transaction(self, f)
    }
}

/// `SKIP LOCKED` came with MySQL 8.0.1 and MariaDB 10.6; older servers wait with `FOR UPDATE`.
#[cfg_attr(
    not(feature = "mysql"),
    allow(dead_code, reason = "used with mysql only")
)]
pub(crate) fn mysql_locks(version: &str) -> Locks {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    let skip = if version.to_ascii_lowercase().contains("mariadb") {
        (major, minor) >= (10, 6)
    } else {
        (major, minor, patch) >= (8, 0, 1)
    };
    if skip { Locks::SkipLocked } else { Locks::Wait }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_locked_by_server_version() {
        assert_eq!(mysql_locks("10.11.19-MariaDB-0+deb12u1"), Locks::SkipLocked);
        assert_eq!(mysql_locks("10.6.0-MariaDB"), Locks::SkipLocked);
        assert_eq!(mysql_locks("10.5.23-MariaDB-log"), Locks::Wait);
        assert_eq!(mysql_locks("8.0.36"), Locks::SkipLocked);
        assert_eq!(mysql_locks("8.0.0"), Locks::Wait);
        assert_eq!(mysql_locks("5.7.44-log"), Locks::Wait);
        assert_eq!(mysql_locks("garbage"), Locks::Wait);
    }
}
