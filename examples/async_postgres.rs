//! Async PostgreSQL with a pool: diesel-async's `AsyncPgConnection` through a deadpool pool,
//! several tasks writing and reading encrypted users at once.
//!
//! `cargo run --example async_postgres` (PostgreSQL at `POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/encrypted_test`). The example creates a scratch database
//! next to it, runs the embedded migrations there, and drops it at the end.

use diesel::{Connection as _, PgConnection, QueryDsl as _, SelectableHelper as _};
use diesel_async::RunQueryDsl as _;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use encrypted_core::config::generate_aesgcm;
use encrypted_core::{EncryptionConfiguration, Keyring};
use obot_store::db::Db;
use obot_store::models::User;
use obot_store::schema::users;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    // 1. Keys, installed once for the process: every task and pooled connection uses them.
    let config =
        EncryptionConfiguration::from_yaml(&generate_aesgcm(obot_store::resources::ALL, "key1")?)?;
    encrypted_diesel::install(Keyring::from_config(&config)?)?;

    // 2. A scratch database with the Obot tables (migrations run on a sync connection).
    let base = std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/encrypted_test".to_owned());
    let (server, _) = base
        .rsplit_once('/')
        .ok_or("POSTGRES_URL has no database name")?;
    let name = format!("obot_store_example_{}", std::process::id());
    let mut admin = PgConnection::establish(&format!("{server}/postgres"))?;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("CREATE DATABASE {name}")),
        &mut admin,
    )?;
    let url = format!("{server}/{name}");
    let result = run(&url).await;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)")),
        &mut admin,
    )?;
    result
}

async fn run(url: &str) -> Result<(), BoxError> {
    Db::connect(url)?.migrate()?;

    // 3. A pool of async connections; four tasks insert and look up their own users.
    let manager = AsyncDieselConnectionManager::<diesel_async::AsyncPgConnection>::new(url);
    let pool = Pool::builder(manager).max_size(4).build()?;
    let template = obot_store::sample::records().users[0].clone();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..4_i64 {
        let pool = pool.clone();
        let mut user = template.clone();
        tasks.spawn(async move {
            let mut conn = pool.get().await?;
            user.id = 1000 + task;
            user.username = Some(format!("async-user-{task}"));
            user.email = Some(format!("user{task}@example.com"));
            diesel::insert_into(users::table)
                .values(&user)
                .execute(&mut conn)
                .await?;
            let found: User = users::table
                .filter(User::email_eq(&format!("user{task}@example.com")))
                .select(User::as_select())
                .first(&mut conn)
                .await?;
            let stored: Option<String> = users::table
                .find(user.id)
                .select(users::email)
                .first(&mut conn)
                .await?;
            if found != user {
                return Err(format!("task {task}: read back a different user").into());
            }
            Ok::<_, BoxError>((task, found.email, stored))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (task, email, stored) = done??;
        println!(
            "task {task}: reads {email:?}; the column holds {}",
            stored.unwrap_or_default()
        );
    }
    Ok(())
}
