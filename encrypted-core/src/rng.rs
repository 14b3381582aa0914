//! Random bytes.
//!
//! Secrets (keys, KMS seeds) come straight from the generator on every call. Public random values
//! — nonces, IVs and KMS `info`, which are stored beside the ciphertext anyway — come from a small
//! per-thread pool refilled from the same generator, because one generator call costs far more
//! than an AES-GCM seal of a small value (aws-lc mixes fresh CPU entropy into every call; measured
//! here at ~0.5–1 µs per call against ~0.1 µs per pooled nonce).
//!
//! Fork safety: the pool remembers the process id it was filled in and is refilled when the id
//! changes, so the child of a `fork()` never reuses nonces its parent also uses. Pooled bytes are
//! wiped as they are handed out.

use std::cell::RefCell;

use zeroize::Zeroize as _;

use crate::{EncryptError, Error};

/// Fills `dest` with cryptographically secure random bytes straight from the generator.
#[cfg(feature = "aws-lc")]
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), Error> {
    aws_lc_rs::rand::fill(dest).map_err(|_| Error::Encrypt(EncryptError::Random))
}

/// Fills `dest` with cryptographically secure random bytes straight from the generator.
#[cfg(not(feature = "aws-lc"))]
pub(crate) fn fill(dest: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(dest).map_err(|_| Error::Encrypt(EncryptError::Random))
}

/// Bytes the pool holds; requests larger than a quarter of it bypass the pool.
const POOL_LEN: usize = 1024;

struct Pool {
    pid: u32,
    used: usize,
    bytes: Box<[u8; POOL_LEN]>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool { pid: 0, used: POOL_LEN, bytes: Box::new([0; POOL_LEN]) });
}

/// Fills `dest` with random bytes that will be stored in the clear (nonces, IVs, KMS `info`).
/// Never use it for keys or seeds.
pub(crate) fn fill_public(dest: &mut [u8]) -> Result<(), Error> {
    if dest.len() > POOL_LEN / 4 {
        return fill(dest);
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let pid = std::process::id();
        if pool.pid != pid || pool.used + dest.len() > POOL_LEN {
            fill(&mut pool.bytes[..])?;
            pool.pid = pid;
            pool.used = 0;
        }
        let start = pool.used;
        let taken = &mut pool.bytes[start..start + dest.len()];
        dest.copy_from_slice(taken);
        taken.zeroize();
        pool.used += dest.len();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_values_do_not_repeat_and_are_wiped() -> Result<(), Error> {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 * POOL_LEN / 12 {
            let mut nonce = [0u8; 12];
            fill_public(&mut nonce)?;
            assert!(seen.insert(nonce), "a nonce repeated");
        }
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(
                pool.bytes[..pool.used].iter().all(|b| *b == 0),
                "handed-out bytes must be wiped"
            );
        });
        Ok(())
    }

    #[test]
    fn a_new_process_id_refills_the_pool() -> Result<(), Error> {
        let mut a = [0u8; 16];
        fill_public(&mut a)?;
        let before = POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            pool.pid = pool.pid.wrapping_add(1); // as if this were a forked child
            (pool.used, pool.bytes[pool.used..pool.used + 16].to_vec())
        });
        let mut b = [0u8; 16];
        fill_public(&mut b)?;
        assert_ne!(
            b.to_vec(),
            before.1,
            "the child must not take the parent's next bytes"
        );
        POOL.with(|pool| assert_eq!(pool.borrow().used, 16, "refilled from the start"));
        Ok(())
    }

    #[test]
    fn large_requests_bypass_the_pool() -> Result<(), Error> {
        let used = POOL.with(|pool| pool.borrow().used);
        let mut big = [0u8; POOL_LEN / 2];
        fill_public(&mut big)?;
        assert!(big.iter().any(|b| *b != 0));
        assert_eq!(used, POOL.with(|pool| pool.borrow().used));
        Ok(())
    }
}
