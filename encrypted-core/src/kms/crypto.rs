//! SHA-256 and HKDF-Expand-SHA256 for the envelope layer: aws-lc-rs when the `aws-lc` feature
//! is on, RustCrypto `sha2`/`hkdf` otherwise.

use std::fmt;

use zeroize::Zeroizing;

/// Length of a derived data key, a seed, and `info`.
pub(crate) const KEY_LEN: usize = 32;

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    #[cfg(feature = "aws-lc")]
    {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }
}

/// A seed ready for HKDF-Expand-SHA256 with the seed as the pseudorandom key (no extract step),
/// as `k8s.io/apiserver`'s `sha256KDFExpandOnly` does.
///
/// With aws-lc the HMAC key schedule is computed once per seed: for a 32-byte output
/// HKDF-Expand is the single block `T(1) = HMAC-SHA256(PRK, info ‖ 0x01)` (RFC 5869 §2.3), so
/// each value costs one HMAC over 33 bytes. A unit test checks it against aws-lc's own HKDF.
pub(crate) struct SeedKdf {
    #[cfg(feature = "aws-lc")]
    key: aws_lc_rs::hmac::Key,
    #[cfg(not(feature = "aws-lc"))]
    kdf: hkdf::Hkdf<sha2::Sha256>,
}

impl fmt::Debug for SeedKdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedKdf([REDACTED])")
    }
}

impl SeedKdf {
    /// `None` for a seed shorter than 32 bytes (Kubernetes' `MinSeedSizeExtendedNonceGCM`).
    pub(crate) fn new(seed: &[u8]) -> Option<Self> {
        if seed.len() < KEY_LEN {
            return None;
        }
        #[cfg(feature = "aws-lc")]
        {
            Some(Self {
                key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, seed),
            })
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            hkdf::Hkdf::<sha2::Sha256>::from_prk(seed)
                .ok()
                .map(|kdf| Self { kdf })
        }
    }

    /// The first 32 bytes of HKDF-Expand-SHA256(PRK = seed, info).
    pub(crate) fn derive(&self, info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        #[cfg(feature = "aws-lc")]
        {
            let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
            ctx.update(info);
            ctx.update(&[1]);
            out.copy_from_slice(ctx.sign().as_ref());
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            // 32 bytes is far below HKDF's limit of 255 * 32.
            if self.kdf.expand(info, &mut out[..]).is_err() {
                unreachable!("HKDF-SHA256 can always expand to 32 bytes");
            }
        }
        out
    }
}

/// A random RFC 4122 version 4 UUID, the `uid` of a key-service call.
pub(crate) fn random_uid() -> String {
    let mut b = [0u8; 16];
    if crate::rng::fill_public(&mut b).is_err() {
        return "00000000-0000-4000-8000-000000000000".to_owned();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_expand_matches_rfc5869_definition() {
        // RFC 5869 test case 1's PRK and info, truncated to our 32-byte output.
        let prk = [
            0x07, 0x77, 0x09, 0x36, 0x2c, 0x2e, 0x32, 0xdf, 0x0d, 0xdc, 0x3f, 0x0d, 0xc4, 0x7b,
            0xba, 0x63, 0x90, 0xb6, 0xc7, 0x3b, 0xb5, 0x0f, 0x9c, 0x31, 0x22, 0xec, 0x84, 0x4a,
            0xd7, 0xc2, 0xb3, 0xe5,
        ];
        let info = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9];
        let okm_prefix = [
            0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
            0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
            0xec, 0xc4, 0xc5, 0xbf,
        ];
        let kdf = SeedKdf::new(&prk).expect("32-byte seed");
        assert_eq!(*kdf.derive(&info), okm_prefix);
        assert!(SeedKdf::new(&[0; 31]).is_none());
    }

    #[cfg(feature = "aws-lc")]
    #[test]
    fn hmac_shortcut_equals_aws_lc_hkdf() {
        struct Len32;
        impl aws_lc_rs::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        for seed_len in [32usize, 48, 64] {
            let seed: Vec<u8> = (0..seed_len).map(|i| i as u8).collect();
            let info = [0xabu8; 32];
            let prk = aws_lc_rs::hkdf::Prk::new_less_safe(aws_lc_rs::hkdf::HKDF_SHA256, &seed);
            let mut expected = [0u8; 32];
            let infos: [&[u8]; 1] = [&info];
            prk.expand(&infos, Len32)
                .and_then(|okm| okm.fill(&mut expected))
                .expect("expand");
            let kdf = SeedKdf::new(&seed).expect("seed");
            assert_eq!(*kdf.derive(&info), expected, "seed of {seed_len} bytes");
        }
    }

    #[test]
    fn sha256_of_parts() {
        assert_eq!(
            hex(&sha256(&[b"a", b"bc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn uids_are_v4() {
        let u = random_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, random_uid());
    }
}
