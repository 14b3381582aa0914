//! The document as written: every field optional, so that validation (not serde) says what is
//! missing, and secrets deserialized without ever being echoed in an error.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use zeroize::Zeroizing;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    pub(super) api_version: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) resources: Option<Vec<RawResource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResource {
    pub(super) resources: Option<Vec<String>>,
    pub(super) providers: Option<Vec<RawProvider>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) aesgcm: Option<RawKeys>,
    pub(super) aescbc: Option<RawKeys>,
    pub(super) secretbox: Option<RawKeys>,
    pub(super) identity: Option<RawEmpty>,
    pub(super) kms: Option<RawKms>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmpty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeys {
    pub(super) keys: Option<Vec<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) name: Option<String>,
    pub(super) secret: Option<RawSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawKms {
    pub(super) api_version: Option<String>,
    pub(super) name: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) timeout: Option<String>,
    pub(super) cachesize: Option<i64>,
}

/// A base64 secret as written. Its deserializer accepts strings only and, unlike serde's
/// defaults, never quotes the rejected value in the error.
pub(super) struct RawSecret(pub(super) Zeroizing<String>);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

const SECRET_TYPE: &str = "secret must be a base64 string (value not shown)";

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecret, E> {
        Ok(RawSecret(Zeroizing::new(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawSecret, E> {
        Ok(RawSecret(Zeroizing::new(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_none<E: de::Error>(self) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_TYPE))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawSecret, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Err(de::Error::custom(SECRET_TYPE))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawSecret, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Err(de::Error::custom(SECRET_TYPE))
    }
}
