//! The store's head: the newest version the writer has committed or is committing, in a small
//! file beside RocksDB's own, so a reader can tell that nothing was committed since a moment it
//! knows without opening the store.
//!
//! Invariants:
//! - The writer writes the head before each commit that makes a version, and at open. So a
//!   head that names version `n` means no commit after `n` had finished when it was read; a
//!   commit that fails or a writer that dies leaves a head ahead of the store, which only costs
//!   readers the fast path until the next commit.
//! - A head names the kernel boot it was written in. After a crash of the machine, page-cache
//!   writes of the store and of the head may each have been lost, so a head of another boot
//!   says nothing; the writer's next open writes a current one.
//! - The record is 32 bytes written in place with its own checksum: a read that races a write
//!   and sees part of each fails the checksum, and is read again.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Store;
use crate::checksum::fnv1a;
use crate::error::StoreError;

/// The head's file name in the store's directory.
pub const HEAD: &str = "CHEETAH-HEAD";
const MAGIC: [u8; 8] = *b"CHTHEAD\x01";
const BYTES: usize = 32;

/// The writer's open head file.
pub(super) struct HeadFile(File);

impl HeadFile {
    /// Opens (creating) the head of the store at `path` for writing.
    pub fn open(path: &Path) -> Result<Self, std::io::Error> {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path.join(HEAD))?;
        Ok(Self(file))
    }

    /// Says that `version` is committed, or about to be.
    pub fn announce(&self, version: u64) -> Result<(), std::io::Error> {
        self.0.write_all_at(&encode(version, boot()), 0)
    }
}

impl Store {
    /// Writes the head before a commit of `version`; see the module's invariants.
    pub(super) fn announce(&self, version: u64) -> Result<(), StoreError> {
        match &self.head {
            Some(head) => head.announce(version).map_err(|e| self.rocks(format!("writing its head: {e}"))),
            None => Ok(()),
        }
    }
}

/// The newest version the writer of the store at `path` has committed or is committing, when
/// its head says so in this boot: `None` for a store without a head (not written by this
/// format), a damaged one, or one of another boot.
pub fn announced(path: &Path) -> Option<u64> {
    let path = path.join(HEAD);
    // A read racing the writer's may see part of each: the checksum tells, and a second read
    // comes after the write.
    for _ in 0..3 {
        let bytes = std::fs::read(&path).ok()?;
        if let Some((version, written_in)) = decode(&bytes) {
            return (written_in == boot()).then_some(version);
        }
    }
    None
}

fn encode(version: u64, boot: u64) -> [u8; BYTES] {
    let mut out = [0u8; BYTES];
    out[..8].copy_from_slice(&MAGIC);
    out[8..16].copy_from_slice(&version.to_le_bytes());
    out[16..24].copy_from_slice(&boot.to_le_bytes());
    let check = fnv1a(&out[..24]);
    out[24..].copy_from_slice(&check.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    let bytes: &[u8; BYTES] = bytes.try_into().ok()?;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    (bytes[..8] == MAGIC && word(24) == fnv1a(&bytes[..24])).then(|| (word(8), word(16)))
}

/// This boot of the kernel, hashed; 0 where the kernel does not say.
fn boot() -> u64 {
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_or(0, |id| fnv1a(id.trim().as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_says_its_version_in_this_boot_only_and_damage_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(announced(dir.path()), None, "no head yet");
        let head = HeadFile::open(dir.path()).unwrap();
        head.announce(7).unwrap();
        assert_eq!(announced(dir.path()), Some(7));
        head.announce(8).unwrap();
        assert_eq!(announced(dir.path()), Some(8), "written in place");

        std::fs::write(dir.path().join(HEAD), encode(9, boot() ^ 1)).unwrap();
        assert_eq!(announced(dir.path()), None, "another boot's head");
        let mut torn = encode(9, boot());
        torn[10] ^= 1;
        std::fs::write(dir.path().join(HEAD), torn).unwrap();
        assert_eq!(announced(dir.path()), None, "a torn or damaged head");
        std::fs::write(dir.path().join(HEAD), &encode(9, boot())[..20]).unwrap();
        assert_eq!(announced(dir.path()), None, "a short head");
    }
}
