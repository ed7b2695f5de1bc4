//! The checksum of the small records Cheetah writes beside its data: the shared layer's
//! manifest and file headers, and the store's head.

/// 64-bit FNV-1a: small, dependency-free, and enough to tell a damaged record from a whole one.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
