//! Entry points for the cargo-fuzz targets in `fuzz/`. **Not an API**: hidden from the docs,
//! outside semver, and changed whenever a target needs something else.
//!
//! Each entry reaches internal code the public API does not expose, the way the targets would if
//! they lived in the crate (rustls' `fuzz/fuzzers/*.rs` habit).

#[cfg(feature = "kms-plugin")]
pub use crate::kms::plugin::fuzzing::{PluginMethod, PluginReply, plugin_call, plugin_reply};

/// Parses a `unix://` KMS plugin endpoint as the plugin client and server do, and formats the
/// parsed address back as an endpoint (`unix:///path` or `unix:///@name`); also builds the
/// socket address (whose failure, such as a path too long for `sun_path`, is not reported).
///
/// # Errors
/// What the parser reports ([`crate::kms::KmsError::InvalidPluginEndpoint`]).
#[cfg(feature = "kms-plugin")]
pub fn plugin_endpoint(endpoint: &str) -> Result<String, crate::Error> {
    use crate::kms::plugin::{SocketAddress, parse_endpoint, socket_addr};
    let address = parse_endpoint(endpoint)?;
    let _ = socket_addr(&address);
    Ok(match address {
        SocketAddress::Path(path) => format!("unix://{}", path.display()),
        SocketAddress::Abstract(name) => format!("unix:///@{name}"),
    })
}
