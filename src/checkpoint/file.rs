//! Writing a checkpoint file safely.
//!
//! A save writes `<path>.tmp-<pid>-<n>` next to `path` (`<pid>` the process id, `<n>`
//! a counter), flushes and `fsync`s it, renames it over `path`, then syncs the
//! directory. A crash at any point leaves the previous checkpoint intact; a process
//! killed mid-save leaves its temporary behind, and the next save to the same `path`
//! by another process removes it (see [`write_atomic`]).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Write `bytes` to `path` through a temporary file in the same directory, first
/// removing the temporaries that other processes left for the same `path`.
///
/// A temporary is stale when its name is `<file name>.tmp-<pid>-<n>` (both numbers in
/// decimal) and `<pid>` is not this process's: a save runs in one process, so another
/// process's temporary belongs to a save that was killed. (Two processes saving to one
/// path at the same moment would remove each other's temporaries; the one whose
/// temporary vanished reports an I/O error, and the file at `path` is still whole.)
/// This process's own temporaries are left alone, since another thread may be
/// writing one. Removal is best effort: a directory that cannot be listed does not stop
/// the save.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"))?;
    remove_stale_temporaries(path);
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let tmp = path.with_file_name(tmp_name);

    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable where directories can be synced (best effort).
    #[cfg(unix)]
    if let Ok(d) = File::open(parent_dir(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Remove the regular files `<file name of path>.tmp-<pid>-<n>` next to `path` whose
/// `<pid>` is not this process's id. Targets whose file name is not UTF-8 are skipped.
fn remove_stale_temporaries(path: &Path) {
    let Some(prefix) = path.file_name().and_then(|n| n.to_str()).map(|n| format!("{n}.tmp-")) else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    let own_pid = std::process::id().to_string();
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, n)) = name.to_str().and_then(|n| n.strip_prefix(&prefix)?.split_once('-')) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if decimal(pid) && decimal(n) && pid != own_pid && is_file {
            let _ = fs::remove_file(entry.path());
        }
    }
}
