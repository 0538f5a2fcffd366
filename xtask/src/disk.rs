//! Free disk space where cargo builds. A run from an empty `target/` writes several GiB; when the disk fills up
//! the only sign is rustc failing to write whichever crate it was compiling, so the test run says so up front.

use std::io;
use std::path::Path;

use nix::sys::statvfs::statvfs;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Bytes an unprivileged process can still write on the file system holding `path` (or its nearest existing
/// ancestor, so a target directory that does not exist yet is measured where it will be created).
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    let existing = path.ancestors().find(|candidate| candidate.exists()).unwrap_or(Path::new("/"));
    let stats = statvfs(existing).map_err(io::Error::from)?;
    Ok(stats.blocks_available().saturating_mul(stats.fragment_size()))
}

/// The apparent size of every file under `dir` (0 if it does not exist). Hard links count once per name, so
/// this over-counts a little; it estimates how much of a cold build is already on disk.
pub fn size_of_tree(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let entries = match std::fs::read_dir(&next) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.len();
            }
        }
    }
    Ok(total)
}

/// `bytes` in GiB with one decimal, for messages.
pub fn gib(bytes: u64) -> String {
    // Precision loss above 2^52 bytes does not matter for a message.
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / GIB;
    format!("{value:.1} GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_measured_where_it_would_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/created");
        assert_eq!(size_of_tree(&missing).unwrap(), 0);
        let parent_free = available_bytes(dir.path()).unwrap();
        assert!(parent_free > 0, "a writable temp dir has free space");
        // Same file system, measured moments apart: equal up to what other processes wrote meanwhile.
        let missing_free = available_bytes(&missing).unwrap();
        assert!(missing_free.abs_diff(parent_free) < 1024 * 1024 * 1024);
    }

    #[test]
    fn the_tree_size_adds_up_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("top"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("a/b/deep"), vec![0u8; 234]).unwrap();
        assert_eq!(size_of_tree(dir.path()).unwrap(), 1234);
    }

    #[test]
    fn sizes_read_in_gib() {
        assert_eq!(gib(0), "0.0 GiB");
        assert_eq!(gib(3 * 1024 * 1024 * 1024 + 512 * 1024 * 1024), "3.5 GiB");
    }
}
