//! The KMS v2 `EncryptedObject`, encoded and decoded by hand (no protobuf runtime).
//!
//! ```proto
//! message EncryptedObject {
//!   bytes encryptedData = 1;
//!   string keyID = 2;
//!   bytes encryptedDEKSource = 3;
//!   map<string, bytes> annotations = 4;
//!   EncryptedDEKSourceType encryptedDEKSourceType = 5;
//! }
//! enum EncryptedDEKSourceType { AES_GCM_KEY = 0; HKDF_SHA256_XNONCE_AES_GCM_SEED = 1; }
//! ```
//!
//! The encoder is deterministic: fields in number order, fields holding their proto3 default
//! omitted, annotations sorted by key, each map entry with both its key (1) and value (2), as Go's
//! protobuf writes them. The decoder accepts fields in any order, repeated singular fields (the
//! last wins, also for repeated annotation keys), and skips unknown fields and fields of an
//! unexpected wire type, as protobuf requires; it rejects truncated or over-long varints, lengths
//! past the end of the input, wire types 6 and 7, unbalanced groups and non-UTF-8 strings with a
//! [`KmsError::Malformed`] naming the offset.
//!
//! Both directions then validate as `k8s.io/apiserver`'s `ValidateEncryptedObject` does.

use std::collections::BTreeMap;
use std::fmt;

use super::KmsError;
use crate::Error;

/// Maximum length of `keyID` (1 KiB).
pub const MAX_KEY_ID_LEN: usize = 1024;
/// Maximum length of `encryptedDEKSource` (1 KiB).
pub const MAX_DEK_SOURCE_LEN: usize = 1024;
/// Maximum total length of annotation keys and values (32 KiB).
pub const MAX_ANNOTATIONS_SIZE: usize = 32 * 1024;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;
/// Deepest nesting of (unknown) groups the decoder skips.
const MAX_GROUP_DEPTH: usize = 64;

/// What `encryptedDEKSource` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DekSourceType {
    /// `AES_GCM_KEY` (0): an AES-GCM data-encryption key used directly; `encryptedData` is
    /// `nonce(12) ‖ ciphertext ‖ tag(16)`. Read-only here (Kubernetes before 1.29 wrote it).
    #[default]
    AesGcmKey,
    /// `HKDF_SHA256_XNONCE_AES_GCM_SEED` (1): a seed from which each value's key is derived;
    /// `encryptedData` is `info(32) ‖ nonce(12) ‖ ciphertext ‖ tag(16)`.
    HkdfSha256XnonceAesGcmSeed,
}

impl DekSourceType {
    /// The protobuf enum number.
    #[must_use]
    pub fn as_i32(self) -> i32 {
        match self {
            DekSourceType::AesGcmKey => 0,
            DekSourceType::HkdfSha256XnonceAesGcmSeed => 1,
        }
    }

    /// The type for a protobuf enum number.
    ///
    /// # Errors
    /// [`KmsError::UnknownDekSourceType`] for any number but 0 and 1.
    pub fn from_i32(value: i32) -> Result<Self, KmsError> {
        match value {
            0 => Ok(DekSourceType::AesGcmKey),
            1 => Ok(DekSourceType::HkdfSha256XnonceAesGcmSeed),
            value => Err(KmsError::UnknownDekSourceType { value }),
        }
    }
}

/// A KMS v2 `EncryptedObject`: what `k8s.io/apiserver` stores after `k8s:enc:kms:v2:<name>:`.
///
/// Its `Debug` shows lengths for the data and the wrapped key, and annotation keys only.
///
/// ```
/// use encrypted_core::kms::{DekSourceType, EncryptedObject};
/// let object = EncryptedObject {
///     encrypted_data: vec![1; 60],
///     key_id: "key-1".into(),
///     encrypted_dek_source: vec![2; 40],
///     annotations: [("version.kms.example.com".to_owned(), b"1".to_vec())].into(),
///     encrypted_dek_source_type: DekSourceType::HkdfSha256XnonceAesGcmSeed,
/// };
/// let bytes = object.encode()?;
/// assert_eq!(EncryptedObject::decode(&bytes)?, object);
/// # Ok::<(), encrypted_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EncryptedObject {
    /// Field 1: the encrypted value (layout depends on the source type).
    pub encrypted_data: Vec<u8>,
    /// Field 2: the key-encryption key's id, as the key service reported it.
    pub key_id: String,
    /// Field 3: the seed or data-encryption key, wrapped by the key service.
    pub encrypted_dek_source: Vec<u8>,
    /// Field 4: opaque metadata from the key service, returned to it on unwrap.
    pub annotations: BTreeMap<String, Vec<u8>>,
    /// Field 5: what `encrypted_dek_source` holds.
    pub encrypted_dek_source_type: DekSourceType,
}

impl fmt::Debug for EncryptedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedObject")
            .field(
                "encrypted_data",
                &crate::keyring::Redacted(self.encrypted_data.len()),
            )
            .field("key_id", &self.key_id)
            .field(
                "encrypted_dek_source",
                &crate::keyring::Redacted(self.encrypted_dek_source.len()),
            )
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .field("encrypted_dek_source_type", &self.encrypted_dek_source_type)
            .finish()
    }
}

impl EncryptedObject {
    /// Validates, then encodes (deterministically).
    ///
    /// # Errors
    /// [`Error::Kms`] with the first rule the object breaks (see [`validate`](Self::validate)).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_to(&mut out)?;
        Ok(out)
    }

    /// Like [`encode`](Self::encode), appending to `out`.
    ///
    /// # Errors
    /// As [`encode`](Self::encode); `out` is unchanged then.
    pub fn encode_to(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.validate()?;
        put_bytes_field(out, 1, &self.encrypted_data);
        encode_tail(
            out,
            &self.key_id,
            &self.encrypted_dek_source,
            self.annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice())),
            self.encrypted_dek_source_type,
        );
        Ok(())
    }

    fn encoded_len_hint(&self) -> usize {
        let annotations: usize = self
            .annotations
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum();
        self.encrypted_data.len()
            + self.key_id.len()
            + self.encrypted_dek_source.len()
            + annotations
            + 32
    }

    /// Decodes and validates.
    ///
    /// # Errors
    /// [`Error::Kms`]: [`KmsError::Malformed`] for bytes that are not protobuf, otherwise the
    /// first validation rule the object breaks.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let object = ObjectRef::decode(bytes)?;
        Ok(Self {
            encrypted_data: object.encrypted_data.to_vec(),
            key_id: object.key_id.to_owned(),
            encrypted_dek_source: object.dek_source.to_vec(),
            annotations: object
                .annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect(),
            encrypted_dek_source_type: object.source_type,
        })
    }

    /// Checks the object as `k8s.io/apiserver`'s `ValidateEncryptedObject` does: a known source
    /// type, non-empty `encryptedData`, `encryptedDEKSource` of 1 to 1024 bytes, `keyID` of 1 to
    /// 1024 bytes, annotation keys that are fully qualified domain names, and at most 32 KiB of
    /// annotation keys and values together.
    ///
    /// # Errors
    /// [`Error::Kms`] with the first rule broken, in that order.
    pub fn validate(&self) -> Result<(), Error> {
        validate_parts(
            &self.encrypted_data,
            &self.key_id,
            &self.encrypted_dek_source,
            self.annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .map_err(Error::from)
    }
}

/// A decoded, validated object borrowing from the stored bytes (the read path).
pub(crate) struct ObjectRef<'a> {
    pub(crate) encrypted_data: &'a [u8],
    pub(crate) key_id: &'a str,
    pub(crate) dek_source: &'a [u8],
    /// Sorted by key, one entry per key.
    pub(crate) annotations: Vec<(&'a str, &'a [u8])>,
    pub(crate) source_type: DekSourceType,
}

impl<'a> ObjectRef<'a> {
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, KmsError> {
        let mut reader = Reader { buf: bytes, pos: 0 };
        let mut encrypted_data: &[u8] = &[];
        let mut key_id: &str = "";
        let mut dek_source: &[u8] = &[];
        let mut annotations: Vec<(&str, &[u8])> = Vec::new();
        let mut source_type: i32 = 0;
        while !reader.at_end() {
            let (field, wire, tag_at) = reader.tag()?;
            match (field, wire) {
                (1, WIRE_LEN) => encrypted_data = reader.len_delimited()?,
                (2, WIRE_LEN) => key_id = reader.string("keyID is not valid UTF-8")?,
                (3, WIRE_LEN) => dek_source = reader.len_delimited()?,
                (4, WIRE_LEN) => {
                    let entry = reader.len_delimited()?;
                    let start = reader.pos - entry.len();
                    annotations.push(decode_map_entry(entry, start)?);
                }
                // Proto3 enums are int32 on the wire: truncation is protobuf's own rule.
                (5, WIRE_VARINT) => source_type = reader.varint()? as i32,
                _ => reader.skip(field, wire, tag_at)?,
            }
        }
        // Protobuf: the last entry of a repeated map key wins.
        annotations.reverse();
        annotations.sort_by(|a, b| a.0.cmp(b.0));
        annotations.dedup_by(|later, earlier| later.0 == earlier.0);
        let source_type = DekSourceType::from_i32(source_type)?;
        validate_parts(
            encrypted_data,
            key_id,
            dek_source,
            annotations.iter().copied(),
        )?;
        Ok(Self {
            encrypted_data,
            key_id,
            dek_source,
            annotations,
            source_type,
        })
    }
}

fn decode_map_entry(entry: &[u8], base: usize) -> Result<(&str, &[u8]), KmsError> {
    let mut reader = Reader { buf: entry, pos: 0 };
    let mut key = "";
    let mut value: &[u8] = &[];
    while !reader.at_end() {
        let (field, wire, tag_at) = reader.tag().map_err(|e| rebase(e, base))?;
        match (field, wire) {
            (1, WIRE_LEN) => {
                key = reader
                    .string("annotation key is not valid UTF-8")
                    .map_err(|e| rebase(e, base))?;
            }
            (2, WIRE_LEN) => value = reader.len_delimited().map_err(|e| rebase(e, base))?,
            _ => reader
                .skip(field, wire, tag_at)
                .map_err(|e| rebase(e, base))?,
        }
    }
    Ok((key, value))
}

/// Shifts a map entry's error offset to the object's coordinates.
fn rebase(e: KmsError, base: usize) -> KmsError {
    match e {
        KmsError::Malformed { reason, offset } => KmsError::Malformed {
            reason,
            offset: offset + base,
        },
        other => other,
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, KmsError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(KmsError::malformed("truncated varint", start));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(KmsError::malformed("varint overflows 64 bits", start));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KmsError::malformed("varint overflows 64 bits", start))
    }

    /// (field number, wire type, offset of the tag).
    fn tag(&mut self) -> Result<(u32, u8, usize), KmsError> {
        let at = self.pos;
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(KmsError::malformed("invalid field number", at));
        }
        Ok((field as u32, (key & 7) as u8, at))
    }

    fn take(&mut self, n: u64, at: usize) -> Result<&'a [u8], KmsError> {
        let remaining = self.buf.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= remaining)
            .ok_or_else(|| KmsError::malformed("length runs past the end of the input", at))?;
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], KmsError> {
        let at = self.pos;
        let len = self.varint()?;
        self.take(len, at)
    }

    fn string(&mut self, reason: &'static str) -> Result<&'a str, KmsError> {
        let at = self.pos;
        let bytes = self.len_delimited()?;
        std::str::from_utf8(bytes).map_err(|_| KmsError::malformed(reason, at))
    }

    /// Skips one field's value by its wire type.
    fn skip(&mut self, field: u32, wire: u8, tag_at: usize) -> Result<(), KmsError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8, tag_at).map(drop),
            WIRE_LEN => self.len_delimited().map(drop),
            WIRE_FIXED32 => self.take(4, tag_at).map(drop),
            WIRE_START_GROUP => self.skip_group(field, tag_at),
            WIRE_END_GROUP => Err(KmsError::malformed("end-group without start-group", tag_at)),
            _ => Err(KmsError::malformed("invalid wire type", tag_at)),
        }
    }

    fn skip_group(&mut self, field: u32, at: usize) -> Result<(), KmsError> {
        let mut open = vec![field];
        while let Some(&innermost) = open.last() {
            if self.at_end() {
                return Err(KmsError::malformed("unterminated group", at));
            }
            let (field, wire, tag_at) = self.tag()?;
            match wire {
                WIRE_START_GROUP => {
                    if open.len() >= MAX_GROUP_DEPTH {
                        return Err(KmsError::malformed("groups nested too deeply", tag_at));
                    }
                    open.push(field);
                }
                WIRE_END_GROUP => {
                    if field != innermost {
                        return Err(KmsError::malformed("mismatched end-group", tag_at));
                    }
                    open.pop();
                }
                _ => self.skip(field, wire, tag_at)?,
            }
        }
        Ok(())
    }
}

/// Fields 2 to 5, which follow `encryptedData` in the deterministic encoding. The write path
/// encodes them once per seed and appends them to every value.
pub(crate) fn encode_tail<'a>(
    out: &mut Vec<u8>,
    key_id: &str,
    dek_source: &[u8],
    annotations: impl Iterator<Item = (&'a str, &'a [u8])>,
    source_type: DekSourceType,
) {
    put_bytes_field(out, 2, key_id.as_bytes());
    put_bytes_field(out, 3, dek_source);
    for (key, value) in annotations {
        let entry_len = 1
            + varint_len(key.len() as u64)
            + key.len()
            + 1
            + varint_len(value.len() as u64)
            + value.len();
        put_tag(out, 4, WIRE_LEN);
        put_varint(out, entry_len as u64);
        put_tag(out, 1, WIRE_LEN);
        put_varint(out, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        put_tag(out, 2, WIRE_LEN);
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
    let source_type = source_type.as_i32();
    if source_type != 0 {
        put_tag(out, 5, WIRE_VARINT);
        put_varint(out, u64::from(source_type.unsigned_abs()));
    }
}

/// A length-delimited field, omitted when empty (proto3 default).
pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    put_tag(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// `ValidateEncryptedObject` after the source type (checked while decoding or by the type).
pub(crate) fn validate_parts<'a>(
    encrypted_data: &[u8],
    key_id: &str,
    dek_source: &[u8],
    annotations: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), KmsError> {
    if encrypted_data.is_empty() {
        return Err(KmsError::EmptyEncryptedData);
    }
    validate_dek_source(dek_source)?;
    validate_key_id(key_id)?;
    validate_annotations(annotations)
}

pub(crate) fn validate_dek_source(dek_source: &[u8]) -> Result<(), KmsError> {
    if dek_source.is_empty() {
        return Err(KmsError::EmptyDekSource);
    }
    if dek_source.len() > MAX_DEK_SOURCE_LEN {
        return Err(KmsError::DekSourceTooLong {
            len: dek_source.len(),
            max: MAX_DEK_SOURCE_LEN,
        });
    }
    Ok(())
}

pub(crate) fn validate_key_id(key_id: &str) -> Result<(), KmsError> {
    if key_id.is_empty() {
        return Err(KmsError::EmptyKeyId);
    }
    if key_id.len() > MAX_KEY_ID_LEN {
        return Err(KmsError::KeyIdTooLong {
            len: key_id.len(),
            max: MAX_KEY_ID_LEN,
        });
    }
    Ok(())
}

pub(crate) fn validate_annotations<'a>(
    annotations: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), KmsError> {
    let mut size = 0usize;
    for (key, value) in annotations {
        if let Err(reason) = check_fqdn(key) {
            return Err(KmsError::InvalidAnnotationKey {
                key: key.chars().take(64).collect(),
                reason,
            });
        }
        size = size.saturating_add(key.len()).saturating_add(value.len());
    }
    if size > MAX_ANNOTATIONS_SIZE {
        return Err(KmsError::AnnotationsTooLarge {
            size,
            max: MAX_ANNOTATIONS_SIZE,
        });
    }
    Ok(())
}

/// `k8s.io/apimachinery`'s `IsFullyQualifiedDomainName`: an optional trailing dot, then a
/// DNS-1123 subdomain (at most 253 characters) of at least two labels, each 1 to 63 characters
/// of `[a-z0-9-]` that start and end with a letter or digit.
pub(crate) fn check_fqdn(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        let bytes = label.as_bytes();
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err("only lowercase letters, digits, '-' and '.' are allowed");
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err("a label starts or ends with '-'");
        }
    }
    if labels < 2 {
        return Err("expected at least two labels separated by dots");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EncryptedObject {
        EncryptedObject {
            encrypted_data: vec![7; 70],
            key_id: "key-1".to_owned(),
            encrypted_dek_source: vec![9; 40],
            annotations: [
                ("b.example.com".to_owned(), b"2".to_vec()),
                ("a.example.com".to_owned(), Vec::new()),
            ]
            .into(),
            encrypted_dek_source_type: DekSourceType::HkdfSha256XnonceAesGcmSeed,
        }
    }

    fn kms(e: Error) -> KmsError {
        match e {
            Error::Kms(k) => k,
            other => panic!("expected a KMS error, got {other}"),
        }
    }

    #[test]
    fn encoding_is_canonical_protobuf() -> Result<(), Error> {
        let object = EncryptedObject {
            encrypted_data: vec![0xAA; 3],
            key_id: "k".to_owned(),
            encrypted_dek_source: vec![0xBB; 2],
            annotations: [("x.y".to_owned(), b"v".to_vec())].into(),
            encrypted_dek_source_type: DekSourceType::HkdfSha256XnonceAesGcmSeed,
        };
        let expected: &[u8] = &[
            0x0a, 3, 0xAA, 0xAA, 0xAA, // 1: encryptedData
            0x12, 1, b'k', // 2: keyID
            0x1a, 2, 0xBB, 0xBB, // 3: encryptedDEKSource
            0x22, 8, 0x0a, 3, b'x', b'.', b'y', 0x12, 1, b'v', // 4: entry {1: key, 2: value}
            0x28, 1, // 5: HKDF_SHA256_XNONCE_AES_GCM_SEED
        ];
        assert_eq!(object.encode()?, expected);
        // AES_GCM_KEY is the proto3 default: field 5 is omitted.
        let mut gcm = object;
        gcm.encrypted_dek_source_type = DekSourceType::AesGcmKey;
        assert_eq!(gcm.encode()?, &expected[..expected.len() - 2]);
        Ok(())
    }

    #[test]
    fn round_trip_and_sorted_annotations() -> Result<(), Error> {
        let object = sample();
        let bytes = object.encode()?;
        assert_eq!(EncryptedObject::decode(&bytes)?, object);
        let a = bytes.windows(13).position(|w| w == b"a.example.com");
        let b = bytes.windows(13).position(|w| w == b"b.example.com");
        assert!(a < b, "annotations must be sorted by key");
        Ok(())
    }

    #[test]
    fn decoder_tolerates_order_unknown_fields_and_repeats() -> Result<(), Error> {
        let mut bytes = Vec::new();
        put_tag(&mut bytes, 5, WIRE_VARINT);
        put_varint(&mut bytes, 1);
        put_tag(&mut bytes, 99, WIRE_FIXED32);
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        put_tag(&mut bytes, 100, WIRE_FIXED64);
        bytes.extend_from_slice(&[0; 8]);
        put_tag(&mut bytes, 101, WIRE_START_GROUP);
        put_tag(&mut bytes, 1, WIRE_VARINT);
        put_varint(&mut bytes, 300);
        put_tag(&mut bytes, 102, WIRE_START_GROUP);
        put_tag(&mut bytes, 102, WIRE_END_GROUP);
        put_tag(&mut bytes, 101, WIRE_END_GROUP);
        put_bytes_field(&mut bytes, 3, &[9; 40]);
        put_bytes_field(&mut bytes, 2, b"old");
        put_bytes_field(&mut bytes, 2, b"key-1");
        // A known field with another wire type is an unknown field.
        put_tag(&mut bytes, 1, WIRE_VARINT);
        put_varint(&mut bytes, 5);
        put_bytes_field(&mut bytes, 1, &[7; 70]);
        // Map entries: a repeated key (last wins), an entry with an unknown field.
        let mut entry = Vec::new();
        put_bytes_field(&mut entry, 1, b"b.example.com");
        put_bytes_field(&mut entry, 2, b"1");
        put_bytes_field(&mut bytes, 4, &entry);
        let mut entry = Vec::new();
        put_bytes_field(&mut entry, 2, b"2");
        put_tag(&mut entry, 7, WIRE_VARINT);
        put_varint(&mut entry, 1);
        put_bytes_field(&mut entry, 1, b"b.example.com");
        put_bytes_field(&mut bytes, 4, &entry);
        let mut entry = Vec::new();
        put_bytes_field(&mut entry, 1, b"a.example.com");
        put_bytes_field(&mut bytes, 4, &entry);
        assert_eq!(EncryptedObject::decode(&bytes)?, sample());
        Ok(())
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x0a], "truncated varint"),
            (&[0x0a, 0x80], "truncated varint"),
            (&[0x0a, 5, 1, 2], "length runs past the end of the input"),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ],
                "varint overflows 64 bits",
            ),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00,
                ],
                "varint overflows 64 bits",
            ),
            (&[0x00], "invalid field number"),
            (&[0x0e], "invalid wire type"),
            (&[0x0f], "invalid wire type"),
            (&[0x0c], "end-group without start-group"),
            (&[0x0b], "unterminated group"),
            (&[0x0b, 0x14], "mismatched end-group"),
            (&[0x0d, 1, 2], "length runs past the end of the input"),
            (&[0x12, 1, 0xff], "keyID is not valid UTF-8"),
            (
                &[0x22, 3, 0x0a, 1, 0xff],
                "annotation key is not valid UTF-8",
            ),
            (
                &[0x22, 3, 0x0a, 5, b'a'],
                "length runs past the end of the input",
            ),
        ];
        for (bytes, reason) in cases {
            match EncryptedObject::decode(bytes).map_err(kms) {
                Err(KmsError::Malformed { reason: r, .. }) => assert_eq!(r, *reason, "{bytes:?}"),
                other => panic!("{bytes:?}: expected Malformed({reason}), got {other:?}"),
            }
        }
        // Offsets inside a map entry are given in the object's coordinates.
        let bytes = [0x0a, 1, 0, 0x22, 3, 0x0a, 5, b'a'];
        match EncryptedObject::decode(&bytes).map_err(kms) {
            Err(KmsError::Malformed { offset, .. }) => assert_eq!(offset, 6),
            other => panic!("{other:?}"),
        }
        let mut deep = Vec::new();
        for _ in 0..=MAX_GROUP_DEPTH {
            put_tag(&mut deep, 9, WIRE_START_GROUP);
        }
        assert!(matches!(
            EncryptedObject::decode(&deep).map_err(kms),
            Err(KmsError::Malformed {
                reason: "groups nested too deeply",
                ..
            })
        ));
    }

    #[test]
    fn validation_matches_kubernetes() {
        let check = |f: &dyn Fn(&mut EncryptedObject)| {
            let mut o = sample();
            f(&mut o);
            let encode = o.encode().map_err(kms);
            // The decoder applies the same rules to the bytes an unchecked encoder would write.
            let mut raw = Vec::new();
            put_bytes_field(&mut raw, 1, &o.encrypted_data);
            encode_tail(
                &mut raw,
                &o.key_id,
                &o.encrypted_dek_source,
                o.annotations
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice())),
                o.encrypted_dek_source_type,
            );
            let decode = EncryptedObject::decode(&raw).map_err(kms);
            assert_eq!(
                format!("{:?}", encode.as_ref().map(|_| ())),
                format!("{:?}", decode.map(|_| ()))
            );
            encode.err()
        };
        assert!(matches!(
            check(&|o| o.encrypted_data.clear()),
            Some(KmsError::EmptyEncryptedData)
        ));
        assert!(matches!(
            check(&|o| o.key_id.clear()),
            Some(KmsError::EmptyKeyId)
        ));
        assert!(matches!(
            check(&|o| o.key_id = "k".repeat(1025)),
            Some(KmsError::KeyIdTooLong {
                len: 1025,
                max: 1024
            })
        ));
        assert!(check(&|o| o.key_id = "k".repeat(1024)).is_none());
        assert!(matches!(
            check(&|o| o.encrypted_dek_source.clear()),
            Some(KmsError::EmptyDekSource)
        ));
        assert!(matches!(
            check(&|o| o.encrypted_dek_source = vec![1; 1025]),
            Some(KmsError::DekSourceTooLong {
                len: 1025,
                max: 1024
            })
        ));
        assert!(check(&|o| o.encrypted_dek_source = vec![1; 1024]).is_none());
        for bad in [
            "nodots",
            "UPPER.example.com",
            "-a.example.com",
            "a..b",
            "",
            "a_b.example.com",
            "a.-b",
        ] {
            assert!(
                matches!(
                    check(&|o| {
                        o.annotations.insert(bad.to_owned(), Vec::new());
                    }),
                    Some(KmsError::InvalidAnnotationKey { .. })
                ),
                "{bad:?} must be refused"
            );
        }
        for good in ["a.b", "kms.example.com.", "x1-2.y", "0.0"] {
            assert!(
                check(&|o| {
                    o.annotations.insert(good.to_owned(), Vec::new());
                })
                .is_none(),
                "{good:?} must be accepted"
            );
        }
        assert!(matches!(
            check(&|o| {
                o.annotations
                    .insert("big.example.com".to_owned(), vec![0; 32 * 1024]);
            }),
            Some(KmsError::AnnotationsTooLarge { .. })
        ));
        let label63 = format!("{}.com", "a".repeat(63));
        assert!(
            check(&|o| {
                o.annotations.insert(label63.clone(), Vec::new());
            })
            .is_none()
        );
        let label64 = format!("{}.com", "a".repeat(64));
        assert!(
            check(&|o| {
                o.annotations.insert(label64.clone(), Vec::new());
            })
            .is_some()
        );
    }

    #[test]
    fn unknown_source_type_is_refused() {
        let mut bytes = sample().encode().unwrap_or_default();
        bytes.truncate(bytes.len() - 2);
        put_tag(&mut bytes, 5, WIRE_VARINT);
        put_varint(&mut bytes, 2);
        assert!(matches!(
            EncryptedObject::decode(&bytes).map_err(kms),
            Err(KmsError::UnknownDekSourceType { value: 2 })
        ));
        // Negative int32 values are ten-byte varints.
        bytes.truncate(bytes.len() - 2);
        put_tag(&mut bytes, 5, WIRE_VARINT);
        put_varint(&mut bytes, u64::MAX);
        assert!(matches!(
            EncryptedObject::decode(&bytes).map_err(kms),
            Err(KmsError::UnknownDekSourceType { value: -1 })
        ));
    }

    #[test]
    fn varint_lengths() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.varint().ok(), Some(v));
        }
    }

    #[test]
    fn debug_hides_bytes() {
        let debug = format!("{:?}", sample());
        assert!(
            debug.contains("REDACTED") && !debug.contains("[7, 7"),
            "{debug}"
        );
    }
}
