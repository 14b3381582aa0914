//! AES-GCM behind one type, with two engines.
//!
//! `aws-lc` (the default) uses aws-lc-rs; `rustcrypto` uses the pure-Rust `aes-gcm` crate. When
//! both features are on, aws-lc is used unless [`Engine::RustCrypto`] is asked for explicitly,
//! which is how the differential tests check each engine against the other.

use std::fmt;

/// Length of an AES-GCM nonce.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of an AES-GCM tag.
pub(crate) const TAG_LEN: usize = 16;

/// An AES-GCM implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// aws-lc-rs (C and assembly, FIPS-capable).
    #[cfg(feature = "aws-lc")]
    AwsLc,
    /// RustCrypto `aes-gcm` (pure Rust).
    #[cfg(feature = "rustcrypto")]
    RustCrypto,
}

impl Default for Engine {
    fn default() -> Self {
        #[cfg(feature = "aws-lc")]
        return Engine::AwsLc;
        #[cfg(all(not(feature = "aws-lc"), feature = "rustcrypto"))]
        return Engine::RustCrypto;
    }
}

#[cfg(not(any(feature = "aws-lc", feature = "rustcrypto")))]
compile_error!("encrypted-core needs an AES-GCM engine: enable feature `aws-lc` or `rustcrypto`");

/// The cipher refused (wrong tag on open; over-long input on seal).
#[derive(Debug)]
pub(crate) struct Failed;

/// An expanded AES-GCM key (128, 192 or 256 bits).
pub(crate) enum GcmKey {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    #[cfg(feature = "rustcrypto")]
    RustCrypto(Box<rc::Key>),
}

impl fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GcmKey([REDACTED])")
    }
}

impl GcmKey {
    /// Expands `key` (16, 24 or 32 bytes) for `engine`; `None` for other lengths.
    pub(crate) fn new(engine: Engine, key: &[u8]) -> Option<Self> {
        match engine {
            #[cfg(feature = "aws-lc")]
            Engine::AwsLc => {
                use aws_lc_rs::aead::{
                    AES_128_GCM, AES_192_GCM, AES_256_GCM, LessSafeKey, UnboundKey,
                };
                let alg = match key.len() {
                    16 => &AES_128_GCM,
                    24 => &AES_192_GCM,
                    32 => &AES_256_GCM,
                    _ => return None,
                };
                let unbound = UnboundKey::new(alg, key).ok()?;
                Some(GcmKey::AwsLc(LessSafeKey::new(unbound)))
            }
            #[cfg(feature = "rustcrypto")]
            Engine::RustCrypto => rc::Key::new(key).map(|k| GcmKey::RustCrypto(Box::new(k))),
        }
    }

    /// Encrypts `plaintext` into `out`, which must be `plaintext.len() + TAG_LEN` bytes:
    /// ciphertext, then tag. Out of place, so the plaintext is never copied into `out` first.
    pub(crate) fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(), Failed> {
        let Some((ciphertext, tag)) = out.split_last_chunk_mut::<TAG_LEN>() else {
            return Err(Failed);
        };
        if ciphertext.len() != plaintext.len() {
            return Err(Failed);
        }
        match self {
            #[cfg(feature = "aws-lc")]
            GcmKey::AwsLc(key) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                key.seal_out_of_place_scatter(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    plaintext,
                    ciphertext,
                    &[],
                    tag,
                )
                .map_err(|_| Failed)
            }
            #[cfg(feature = "rustcrypto")]
            GcmKey::RustCrypto(key) => key.seal_to(nonce, aad, plaintext, ciphertext, tag),
        }
    }

    /// Decrypts in place: `in_out[start..]` holds `ciphertext ‖ tag`; on success the plaintext
    /// is moved to the front of `in_out` and its length returned. On failure the bytes from
    /// `start` on are unspecified (the cipher may have written into them).
    pub(crate) fn open_within(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        start: usize,
    ) -> Result<usize, Failed> {
        match self {
            #[cfg(feature = "aws-lc")]
            GcmKey::AwsLc(key) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                key.open_within(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    in_out,
                    start..,
                )
                .map(|plaintext| plaintext.len())
                .map_err(|_| Failed)
            }
            #[cfg(feature = "rustcrypto")]
            GcmKey::RustCrypto(key) => {
                let body = in_out.get_mut(start..).ok_or(Failed)?;
                let Some((ciphertext, tag)) = body.split_last_chunk_mut::<TAG_LEN>() else {
                    return Err(Failed);
                };
                let tag = *tag;
                key.open_in_place(nonce, aad, ciphertext, &tag)?;
                let len = ciphertext.len();
                in_out.copy_within(start..start + len, 0);
                Ok(len)
            }
        }
    }

    /// Decrypts `ciphertext` into `out` (same length) after checking `tag`.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), Failed> {
        match self {
            #[cfg(feature = "aws-lc")]
            GcmKey::AwsLc(key) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                key.open_separate_gather(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    ciphertext,
                    tag,
                    out,
                )
                .map_err(|_| Failed)
            }
            #[cfg(feature = "rustcrypto")]
            GcmKey::RustCrypto(key) => key.open(nonce, aad, ciphertext, tag, out),
        }
    }
}

#[cfg(feature = "rustcrypto")]
mod rc {
    use aes_gcm::aead::inout::InOutBuf;
    use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm, AesGcm, KeyInit, Nonce, Tag};

    use super::{Failed, NONCE_LEN, TAG_LEN};

    type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

    pub(crate) enum Key {
        K128(Aes128Gcm),
        K192(Aes192Gcm),
        K256(Aes256Gcm),
    }

    impl Key {
        pub(crate) fn new(key: &[u8]) -> Option<Self> {
            Some(match key.len() {
                16 => Key::K128(Aes128Gcm::new_from_slice(key).ok()?),
                24 => Key::K192(Aes192Gcm::new_from_slice(key).ok()?),
                32 => Key::K256(Aes256Gcm::new_from_slice(key).ok()?),
                _ => return None,
            })
        }

        pub(crate) fn seal_to(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            plaintext: &[u8],
            ciphertext: &mut [u8],
            tag_out: &mut [u8; TAG_LEN],
        ) -> Result<(), Failed> {
            let nonce = Nonce::from(*nonce);
            let buf = InOutBuf::new(plaintext, ciphertext).map_err(|_| Failed)?;
            let tag = match self {
                Key::K128(k) => k.encrypt_inout_detached(&nonce, aad, buf),
                Key::K192(k) => k.encrypt_inout_detached(&nonce, aad, buf),
                Key::K256(k) => k.encrypt_inout_detached(&nonce, aad, buf),
            }
            .map_err(|_| Failed)?;
            *tag_out = tag.into();
            Ok(())
        }

        pub(crate) fn open(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            ciphertext: &[u8],
            tag: &[u8],
            out: &mut [u8],
        ) -> Result<(), Failed> {
            let nonce = Nonce::from(*nonce);
            let tag = Tag::try_from(tag).map_err(|_| Failed)?;
            let buf = InOutBuf::new(ciphertext, out).map_err(|_| Failed)?;
            match self {
                Key::K128(k) => k.decrypt_inout_detached(&nonce, aad, buf, &tag),
                Key::K192(k) => k.decrypt_inout_detached(&nonce, aad, buf, &tag),
                Key::K256(k) => k.decrypt_inout_detached(&nonce, aad, buf, &tag),
            }
            .map_err(|_| Failed)
        }

        /// Decrypts `in_out` in place after checking `tag` (RustCrypto checks the tag before
        /// decrypting, so a refused value is left as it was).
        pub(crate) fn open_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            in_out: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<(), Failed> {
            let nonce = Nonce::from(*nonce);
            let tag = Tag::from(*tag);
            let buf = InOutBuf::from(in_out);
            match self {
                Key::K128(k) => k.decrypt_inout_detached(&nonce, aad, buf, &tag),
                Key::K192(k) => k.decrypt_inout_detached(&nonce, aad, buf, &tag),
                Key::K256(k) => k.decrypt_inout_detached(&nonce, aad, buf, &tag),
            }
            .map_err(|_| Failed)
        }
    }
}
