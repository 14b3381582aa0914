//! Connections and embedded migrations.

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The SQLite migrations, embedded.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL migrations, embedded.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend.
#[allow(
    missing_debug_implementations,
    reason = "diesel connections do not implement Debug"
)]
pub enum Db {
    /// A SQLite file (or `:memory:`).
    Sqlite(SqliteConnection),
    /// A PostgreSQL server.
    Pg(PgConnection),
}

/// A failure from the database layer.
pub type DbError = Box<dyn std::error::Error + Send + Sync>;

/// True for `postgres://` and `postgresql://` URLs.
#[must_use]
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Db {
    /// Connects: a `postgres://` URL, else a SQLite path (`sqlite://` prefix optional; the
    /// parent directory is created).
    ///
    /// # Errors
    /// Connection failures.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        if is_postgres(url) {
            return Ok(Db::Pg(PgConnection::establish(url)?));
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        let dir = std::path::Path::new(path).parent();
        if let Some(dir) = dir.filter(|d| path != ":memory:" && !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = SqliteConnection::establish(path)?;
        diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn)?;
        diesel::sql_query("PRAGMA journal_mode = WAL").execute(&mut conn)?;
        Ok(Db::Sqlite(conn))
    }

    /// Runs the pending migrations; returns their names.
    ///
    /// # Errors
    /// A migration that fails.
    pub fn migrate(&mut self) -> Result<Vec<String>, DbError> {
        let done = match self {
            Db::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS)?,
            Db::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS)?,
        };
        Ok(done.iter().map(ToString::to_string).collect())
    }

    /// The backend's name.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Pg(_) => "postgres",
        }
    }
}
