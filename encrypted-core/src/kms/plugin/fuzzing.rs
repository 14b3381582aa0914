//! The plugin's fuzz entries, re-exported as `encrypted_core::__fuzz`. Not an API.

use std::sync::{Arc, OnceLock};

use prost::Message as _;

use super::pb::key_management_service_server::KeyManagementService as _;
use super::pb::{self};
use crate::kms::{EncryptResponse, KeyService, Status, Zeroizing};

/// A method of `v2.KeyManagementService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginMethod {
    /// `Status`.
    Status,
    /// `Encrypt`.
    Encrypt,
    /// `Decrypt`.
    Decrypt,
}

/// A plugin's reply as [`super::PluginClient`] hands it to the envelope layer.
#[derive(Debug)]
pub enum PluginReply {
    /// What `Status` answered.
    Status(Status),
    /// What `Encrypt` answered.
    Encrypt(EncryptResponse),
    /// What `Decrypt` answered: the unwrapped secret.
    Decrypt(Zeroizing<Vec<u8>>),
}

/// One request body (the protobuf request message of `method`) through the handler a server
/// connection reaches, synchronously and without a network: decoded as tonic does (a body that
/// is not the message is `INTERNAL`, tonic's status for a decode error), answered by the plugin
/// server's handler (key-service calls on a blocking thread, errors as the server maps them),
/// and the response message encoded as it would be sent.
///
/// # Errors
/// The gRPC status the server would answer with.
pub fn plugin_call(
    service: &Arc<dyn KeyService>,
    method: PluginMethod,
    body: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().build().ok())
        .as_ref()
        .ok_or_else(|| tonic::Status::internal("no runtime for the fuzz entry"))?;
    let handlers = super::server::handlers(Arc::clone(service));
    let decode_error = |e: prost::DecodeError| tonic::Status::internal(e.to_string());
    runtime.block_on(async move {
        Ok(match method {
            PluginMethod::Status => {
                let request = pb::StatusRequest::decode(body).map_err(decode_error)?;
                let response = handlers.status(tonic::Request::new(request)).await?;
                response.into_inner().encode_to_vec()
            }
            PluginMethod::Encrypt => {
                let request = pb::EncryptRequest::decode(body).map_err(decode_error)?;
                let response = handlers.encrypt(tonic::Request::new(request)).await?;
                response.into_inner().encode_to_vec()
            }
            PluginMethod::Decrypt => {
                let request = pb::DecryptRequest::decode(body).map_err(decode_error)?;
                let response = handlers.decrypt(tonic::Request::new(request)).await?;
                response.into_inner().encode_to_vec()
            }
        })
    })
}

/// A reply body (the protobuf response message of `method`) decoded and converted as
/// [`super::PluginClient`] does before the envelope layer checks it; `None` when it is not the
/// message (the client reports tonic's decode error as a failed call).
#[must_use]
pub fn plugin_reply(method: PluginMethod, body: &[u8]) -> Option<PluginReply> {
    Some(match method {
        PluginMethod::Status => {
            let r = pb::StatusResponse::decode(body).ok()?;
            PluginReply::Status(Status::new(r.version, r.healthz, r.key_id))
        }
        PluginMethod::Encrypt => {
            let r = pb::EncryptResponse::decode(body).ok()?;
            PluginReply::Encrypt(EncryptResponse::new(
                r.ciphertext,
                r.key_id,
                r.annotations.into_iter().collect(),
            ))
        }
        PluginMethod::Decrypt => {
            let r = pb::DecryptResponse::decode(body).ok()?;
            PluginReply::Decrypt(Zeroizing::new(r.plaintext))
        }
    })
}
