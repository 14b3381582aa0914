//! Connections and embedded migrations.

use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The SQLite migrations, embedded.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL migrations, embedded.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// What `--database-url` may be, for messages.
pub const SUPPORTED_DATABASES: &str =
    "postgres://, postgresql://, sqlite:// or the path of a SQLite file";

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

/// Why a database cannot be opened (messages show URLs with [`redact_url`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL names a scheme this program does not speak.
    #[error("unsupported database URL scheme {scheme:?} in {url}: expected {SUPPORTED_DATABASES}")]
    UnsupportedScheme {
        /// The scheme, with `://`.
        scheme: String,
        /// The URL, redacted.
        url: String,
    },
    /// The SQLite file does not exist (and this command does not create databases).
    #[error("no database at {path}: run `obot-store init` or `obot-store migrate` first")]
    NoDatabase {
        /// The path.
        path: String,
    },
    /// The database exists but its migrations have not all run.
    #[error(
        "the database {url} is not migrated ({applied} of {total} migrations applied): run \
         `obot-store migrate` first"
    )]
    NotMigrated {
        /// The URL, redacted.
        url: String,
        /// Embedded migrations found applied.
        applied: usize,
        /// Embedded migrations.
        total: usize,
    },
    /// A database without the migrations' record (created by Obot's GORM, not by
    /// `obot-store migrate`) that lacks some of the tables the store reads.
    #[error(
        "the database {url} has no record of migrations and lacks the tables {missing}: it is \
         neither a database `obot-store migrate` created nor a complete Obot database"
    )]
    MissingTables {
        /// The URL, redacted.
        url: String,
        /// The absent tables, comma-separated.
        missing: String,
    },
}

/// The tables of Obot's current schema that the store's models read (as GORM creates them):
/// a database without the migrations' record must have every one.
pub const TABLES: &[&str] = &[
    "users",
    "identities",
    "local_auth_users",
    "mcpo_auth_tokens",
    "mcpo_auth_pending_states",
    "mcp_audit_logs",
    "llm_audit_logs",
    "message_policy_violations",
    "properties",
    "credentials",
];

/// Historic tables the store still reads where they exist: Obot dropped them (migrations
/// `drop_session_cookies` and `drop_run_thread_run_states_tables`, see
/// `docs/obot-encryption-spec.md` §3.10–3.11), so a current Obot database has neither; an older
/// one, and a database `obot-store migrate` created, has both. `status`, `rewrap` and `verify`
/// skip an absent one.
pub const HISTORIC_TABLES: &[&str] = &["session_cookies", "run_states"];

/// True for `postgres://` and `postgresql://` URLs.
#[must_use]
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with every password replaced by `***`: the password of the user-info part
/// (`postgres://user:***@host/db`, also `mysql://`), and the value of every query or key-value
/// parameter whose name contains `password` (`?password=***`, `sslpassword=***`,
/// `host=x password=***`). Everything else is kept.
///
/// ```
/// use obot_store::db::redact_url;
/// assert_eq!(redact_url("postgres://obot:s3cret@db:5432/obot"), "postgres://obot:***@db:5432/obot");
/// assert_eq!(redact_url("mysql://root:p@ss@127.0.0.1/x"), "mysql://root:***@127.0.0.1/x");
/// assert_eq!(
///     redact_url("postgresql://db/obot?user=obot&password=s3cret&sslmode=require"),
///     "postgresql://db/obot?user=obot&password=***&sslmode=require"
/// );
/// assert_eq!(redact_url("obot-data/obot.db"), "obot-data/obot.db");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    redact(url, &mut Vec::new())
}

/// The passwords in `url` (as written and percent-decoded), for scrubbing them from messages
/// that might quote them ([`redact_url`] covers the URL itself).
///
/// ```
/// use obot_store::db::url_secrets;
/// assert_eq!(url_secrets("postgres://obot:p%40ss@db/obot"), ["p%40ss", "p@ss"]);
/// ```
#[must_use]
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    redact(url, &mut secrets);
    let decoded: Vec<String> = secrets
        .iter()
        .map(|s| percent_decode(s))
        .filter(|d| !secrets.contains(d))
        .collect();
    secrets.extend(decoded);
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// [`redact_url`], collecting what it replaced into `secrets`.
fn redact(url: &str, secrets: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    if let Some(at) = url.find("://") {
        let authority_start = at + 3;
        let after = &url[authority_start..];
        let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..authority_len];
        out.push_str(&url[..authority_start]);
        // The password may hold `@`: the host starts after the last one.
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                        secrets.push(password.to_owned());
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    // Parameters: `name=value` separated by `&`, `;`, spaces (or starting after `?`).
    let mut start = 0;
    while start < rest.len() {
        let end = rest[start..]
            .find(['&', ';', ' ', '?', '#'])
            .map_or(rest.len(), |i| start + i);
        let part = &rest[start..end];
        match part.split_once('=') {
            Some((name, value)) if name.to_ascii_lowercase().contains("password") => {
                out.push_str(name);
                out.push_str("=***");
                secrets.push(value.to_owned());
            }
            _ => out.push_str(part),
        }
        if let Some(separator) = rest[end..].chars().next() {
            out.push(separator);
        }
        start = end + 1;
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks that `url` names a database this program can open (a supported scheme, or a path),
/// without opening it.
///
/// # Errors
/// [`OpenError::UnsupportedScheme`].
pub fn check_url(url: &str) -> Result<(), OpenError> {
    target(url).map(|_| ())
}

/// Where a database URL points.
enum Target<'a> {
    Postgres,
    Sqlite(&'a str),
}

fn target(url: &str) -> Result<Target<'_>, OpenError> {
    if is_postgres(url) {
        return Ok(Target::Postgres);
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Target::Sqlite(path));
    }
    // Anything else that looks like `scheme://` is not a file name.
    if let Some((scheme, _)) = url.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(OpenError::UnsupportedScheme {
            scheme: format!("{scheme}://"),
            url: redact_url(url),
        });
    }
    Ok(Target::Sqlite(url))
}

impl Db {
    /// Connects, creating a SQLite database (and its directory) when the file does not exist:
    /// for `init` and `migrate`. A `postgres://` or `postgresql://` URL, else a SQLite path
    /// (`sqlite://` prefix optional).
    ///
    /// # Errors
    /// [`OpenError::UnsupportedScheme`] for another `scheme://`; connection failures.
    pub fn connect(url: &str) -> Result<Self, DbError> {
        let path = match target(url)? {
            Target::Postgres => return Ok(Db::Pg(PgConnection::establish(url)?)),
            Target::Sqlite(path) => path,
        };
        let dir = std::path::Path::new(path).parent();
        if let Some(dir) = dir.filter(|d| path != ":memory:" && !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let conn = SqliteConnection::establish(path)?;
        Self::sqlite(conn)
    }

    /// Connects to a database that must exist and be migrated: for `status`, `rewrap` and
    /// `demo --database-url`. Nothing is created: a SQLite file is opened read-write without
    /// the create flag.
    ///
    /// # Errors
    /// [`OpenError::UnsupportedScheme`], [`OpenError::NoDatabase`] for a missing SQLite file,
    /// [`OpenError::NotMigrated`] when a migration has not run, [`OpenError::MissingTables`] for a
    /// database without migrations' record (one Obot created) that lacks a table; connection
    /// failures.
    pub fn open_existing(url: &str) -> Result<Self, DbError> {
        let mut db = match target(url)? {
            Target::Postgres => Db::Pg(PgConnection::establish(url)?),
            Target::Sqlite(path) => {
                if path == ":memory:" || !std::path::Path::new(path).exists() {
                    return Err(OpenError::NoDatabase {
                        path: path.to_owned(),
                    }
                    .into());
                }
                // `mode=rw`: fails rather than creates if the file vanished meanwhile.
                let uri = format!("file:{}?mode=rw", uri_escape(path));
                let mut conn = SqliteConnection::establish(&uri)?;
                diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn)?;
                Db::Sqlite(conn)
            }
        };
        // Checked before anything could write (the journal mode below).
        let (applied, total) = db.migration_state()?;
        if applied == 0 && db.table_exists("users")? {
            // No migrations recorded but tables present: a database Obot (GORM) created. It is
            // usable when every table the store reads is there.
            let mut missing = Vec::new();
            for table in TABLES {
                if !db.table_exists(table)? {
                    missing.push(*table);
                }
            }
            if !missing.is_empty() {
                return Err(OpenError::MissingTables {
                    url: redact_url(url),
                    missing: missing.join(", "),
                }
                .into());
            }
        } else if applied < total {
            return Err(OpenError::NotMigrated {
                url: redact_url(url),
                applied,
                total,
            }
            .into());
        }
        if let Db::Sqlite(conn) = &mut db {
            diesel::sql_query("PRAGMA journal_mode = WAL").execute(conn)?;
        }
        Ok(db)
    }

    fn sqlite(mut conn: SqliteConnection) -> Result<Self, DbError> {
        diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn)?;
        diesel::sql_query("PRAGMA journal_mode = WAL").execute(&mut conn)?;
        Ok(Db::Sqlite(conn))
    }

    /// Whether `table` exists (in the current schema on PostgreSQL).
    pub(crate) fn table_exists(&mut self, table: &str) -> Result<bool, DbError> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n = match self {
            Db::Sqlite(c) => diesel::sql_query(
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .bind::<diesel::sql_types::Text, _>(table)
            .get_result::<Count>(c)?,
            Db::Pg(c) => diesel::sql_query(
                "SELECT count(*) AS n FROM pg_catalog.pg_tables WHERE tablename = $1 AND \
                 schemaname = ANY (current_schemas(false))",
            )
            .bind::<diesel::sql_types::Text, _>(table)
            .get_result::<Count>(c)?,
        }
        .n;
        Ok(n > 0)
    }

    /// How many of the embedded migrations are recorded as applied, and how many there are,
    /// read without creating the migrations table.
    fn migration_state(&mut self) -> Result<(usize, usize), DbError> {
        #[derive(QueryableByName)]
        struct Version {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let exists = match self {
            Db::Sqlite(c) => diesel::sql_query(
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = \
                 '__diesel_schema_migrations'",
            )
            .get_result::<Count>(c)?,
            Db::Pg(c) => diesel::sql_query(
                "SELECT count(*) AS n FROM pg_catalog.pg_tables WHERE tablename = \
                 '__diesel_schema_migrations' AND schemaname = ANY (current_schemas(false))",
            )
            .get_result::<Count>(c)?,
        }
        .n > 0;
        let query = "SELECT version FROM __diesel_schema_migrations";
        let (embedded, applied): (Vec<String>, Vec<Version>) = match self {
            Db::Sqlite(c) => (
                versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)?,
                if exists {
                    diesel::sql_query(query).load(c)?
                } else {
                    Vec::new()
                },
            ),
            Db::Pg(c) => (
                versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)?,
                if exists {
                    diesel::sql_query(query).load(c)?
                } else {
                    Vec::new()
                },
            ),
        };
        let applied: std::collections::HashSet<String> =
            applied.into_iter().map(|v| v.version).collect();
        let done = embedded.iter().filter(|v| applied.contains(*v)).count();
        Ok((done, embedded.len()))
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

/// The versions of embedded migrations, as diesel records them.
fn versions<DB: diesel::backend::Backend>(
    source: &impl MigrationSource<DB>,
) -> Result<Vec<String>, DbError> {
    Ok(source
        .migrations()?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// A path as the path part of a SQLite `file:` URI.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            (
                "postgres://obot:s3cret@127.0.0.1:5432/obot",
                "postgres://obot:***@127.0.0.1:5432/obot",
            ),
            (
                "postgresql://obot:p%40ss@db/obot?sslmode=require",
                "postgresql://obot:***@db/obot?sslmode=require",
            ),
            ("mysql://root:p@ss:w@rd@h/x", "mysql://root:***@h/x"),
            ("postgres://obot@db/obot", "postgres://obot@db/obot"),
            ("postgres://:pw@db/obot", "postgres://:***@db/obot"),
            (
                "postgres://db/obot?user=u&password=pw&sslpassword=x#frag",
                "postgres://db/obot?user=u&password=***&sslpassword=***#frag",
            ),
            (
                "postgres:///obot?PassWord=pw",
                "postgres:///obot?PassWord=***",
            ),
            ("host=db password=pw user=u", "host=db password=*** user=u"),
            ("obot-data/obot.db", "obot-data/obot.db"),
            ("sqlite://obot.db", "sqlite://obot.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn secrets_are_found_for_scrubbing() {
        assert_eq!(
            url_secrets("postgres://obot:p%40ss@db/obot?password=two&x=1"),
            ["p%40ss", "two", "p@ss"]
        );
        assert_eq!(url_secrets("mysql://root:p@ss@h/x"), ["p@ss"]);
        assert!(url_secrets("postgres://obot@db/obot").is_empty());
    }

    #[test]
    fn schemes_are_recognised() {
        for url in [
            "mysql://root@127.0.0.1/x",
            "postgress://db/x",
            "file://x.db",
        ] {
            assert!(
                matches!(target(url), Err(OpenError::UnsupportedScheme { .. })),
                "{url}"
            );
        }
        assert!(matches!(target("postgres://db/x"), Ok(Target::Postgres)));
        assert!(matches!(
            target("sqlite://a.db"),
            Ok(Target::Sqlite("a.db"))
        ));
        assert!(matches!(
            target("data/a.db"),
            Ok(Target::Sqlite("data/a.db"))
        ));
    }
}
