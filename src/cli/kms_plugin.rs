//! `obot-store kms-plugin`: serve a key service as a Kubernetes KMS v2 plugin on a Unix socket.

use std::sync::Arc;
use std::time::Duration;

use encrypted_core::config::{KmsConfig, parse_duration};
use encrypted_core::kms::KeyServiceRegistry;
use encrypted_core::kms::plugin::{PluginServer, ServeOptions};

use super::CliError;

/// Options of `obot-store kms-plugin`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to listen: unix:///path/to/socket (created with mode 0600; a stale socket file is
    /// replaced) or unix:///@name (a Linux abstract socket).
    #[arg(long, value_name = "ENDPOINT")]
    listen: String,
    /// The key service to serve, as a kms provider's endpoint: local:///path/to/keyfile,
    /// local://env/VAR_NAME, or any other scheme this build supports.
    #[arg(long, value_name = "ENDPOINT")]
    key_service: String,
    /// Timeout of each call to the key service, such as 3s or 500ms.
    #[arg(long, default_value = "3s", value_parser = duration)]
    timeout: Duration,
    /// How long calls in flight may take to finish after SIGTERM or SIGINT.
    #[arg(long, default_value = "5s", value_parser = duration)]
    grace: Duration,
    /// How often the gRPC health service asks the key service for its status.
    #[arg(long, default_value = "10s", value_parser = duration)]
    health_interval: Duration,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("expected a positive duration such as 3s or 500ms, found {text:?}"))
}

/// Serves until SIGTERM or SIGINT.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    if args.key_service == args.listen {
        return Err("--key-service must not be the plugin's own --listen endpoint".into());
    }
    let config = KmsConfig::new("kms-plugin", args.key_service.as_str(), args.timeout);
    let service = KeyServiceRegistry::default().key_service(&config)?;
    let options = ServeOptions::default()
        .grace(args.grace)
        .health_interval(args.health_interval);
    let server = PluginServer::bind(&args.listen, Arc::clone(&service), options)?;
    eprintln!("kms-plugin: serving {service:?} on {}", args.listen);
    server.run()?;
    eprintln!("kms-plugin: stopped");
    Ok(())
}
