//! A KMS v2 plugin setup end to end: a plugin server on a Unix socket (here in-process, serving a
//! local key-encryption key; in production `obot-store kms-plugin` or a vendor plugin), a
//! configuration whose `kms` provider points at the socket, and encrypted models in SQLite.
//!
//! `cargo run --example kms_plugin`
//!
//! The same configuration works with the plugin as a separate process:
//!
//! ```sh
//! head -c 32 /dev/urandom | base64 > kek && chmod 600 kek
//! obot-store kms-plugin --listen unix:///tmp/kms.sock --key-service "local://$PWD/kek"
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use diesel::prelude::*;
use encrypted_core::config::KmsConfig;
use encrypted_core::kms::plugin::{PluginServer, ServeOptions};
use encrypted_core::kms::{KeyServiceRegistry, KmsOptions};
use encrypted_core::{EncryptionConfiguration, Keyring};
use obot_store::db::Db;
use obot_store::models::User;
use obot_store::schema::users;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;

    // 1. The key-encryption key the plugin guards (32 random bytes, base64, mode 0600).
    let mut kek = [0_u8; 32];
    getrandom::fill(&mut kek).map_err(|e| format!("no system randomness: {e}"))?;
    let kek_path = dir.path().join("kek");
    std::fs::write(
        &kek_path,
        base64::engine::general_purpose::STANDARD.encode(kek),
    )?;

    // 2. The plugin: a KMS v2 gRPC server on a Unix socket, on its own thread and runtime.
    let socket = format!("unix://{}", dir.path().join("kms.sock").display());
    let local = KmsConfig::new(
        "kek",
        format!("local://{}", kek_path.display()),
        Duration::from_secs(3),
    );
    let service = KeyServiceRegistry::default().key_service(&local)?;
    let server = PluginServer::bind(&socket, Arc::clone(&service), ServeOptions::default())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let plugin = std::thread::spawn(move || -> Result<(), BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(server.serve(async {
            let _ = stopped.await;
        }))?;
        Ok(())
    });

    // 3. The application's configuration: the kms provider first (it writes), identity last.
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\n\
         kind: EncryptionConfiguration\n\
         resources:\n\
         - resources: ['*.obot.obot.ai']\n  \
           providers:\n  \
           - kms:\n      apiVersion: v2\n      name: obot-kms\n      endpoint: {socket}\n      timeout: 3s\n  \
           - identity: {{}}\n"
    );
    let registry = KeyServiceRegistry::default().options(KmsOptions::default());
    let keyring = Keyring::builder()
        .kms(registry.factory())
        .build(&EncryptionConfiguration::from_yaml(&yaml)?)?;
    encrypted_diesel::install(keyring)?;

    // 4. Models as usual: 1 000 users written and read back.
    let mut db = Db::connect(&dir.path().join("obot.db").display().to_string())?;
    db.migrate()?;
    let Db::Sqlite(conn) = &mut db else {
        return Err("expected a SQLite connection".into());
    };
    let template = obot_store::sample::records().users[0].clone();
    let rows: Vec<User> = (1..=1000)
        .map(|id| {
            let mut u = template.clone();
            u.id = id;
            u.username = Some(format!("user{id}"));
            u.email = Some(format!("user{id}@example.com"));
            u
        })
        .collect();
    diesel::insert_into(users::table)
        .values(&rows)
        .execute(conn)?;
    let found: User = users::table
        .filter(User::email_eq("user42@example.com"))
        .select(User::as_select())
        .first(conn)?;
    let stored: String = users::table
        .find(42)
        .select(users::email)
        .first::<Option<String>>(conn)?
        .unwrap_or_default();
    let raw = base64::engine::general_purpose::STANDARD.decode(&stored)?;
    println!("application reads {:?}", found.email);
    println!(
        "the column holds {} bytes of base64; decoded, it starts with {:?}",
        stored.len(),
        String::from_utf8_lossy(&raw[..raw.len().min(24)])
    );

    // 5. One wrap call for all 1 000 values: the plugin is asked once per seed, not per value.
    let transformer = registry
        .providers()
        .get("obot-kms")
        .ok_or("no kms provider built")?;
    let m = transformer.metrics();
    println!(
        "key-service calls: {} encrypt, {} decrypt, {} status",
        m.encrypt_calls, m.decrypt_calls, m.status_calls
    );

    let _ = stop.send(());
    plugin.join().map_err(|_| "the plugin thread panicked")??;
    Ok(())
}
