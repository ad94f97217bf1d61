//! Deterministic randomness: seed derivation, stable hashing and id formats.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// FNV-1a, 64 bit: a stable hash (unlike `DefaultHasher`, fixed across Rust releases).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// SplitMix64 finaliser: spreads nearby seeds far apart.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An RNG for one purpose (`label`) derived from the simulator seed.
pub(crate) fn rng_for(seed: u64, label: &str) -> StdRng {
    StdRng::seed_from_u64(splitmix(seed ^ fnv1a(label.as_bytes())))
}

/// An RNG determined by the seed and some content (e.g. a request body).
pub(crate) fn rng_for_content(seed: u64, label: &str, content: &[u8]) -> StdRng {
    StdRng::seed_from_u64(splitmix(
        seed ^ fnv1a(label.as_bytes()) ^ fnv1a(content).rotate_left(17),
    ))
}

/// `n` lowercase hex digits.
pub(crate) fn hex(rng: &mut impl Rng, n: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..n)
        .map(|_| char::from(DIGITS[rng.random_range(0..16)]))
        .collect()
}

/// A random (version 4 layout) UUID string.
pub(crate) fn uuid(rng: &mut impl Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let a = uuid(&mut rng_for(1, "x"));
        let b = uuid(&mut rng_for(1, "x"));
        let c = uuid(&mut rng_for(2, "x"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(hex(&mut rng_for(1, "y"), 32).len(), 32);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
