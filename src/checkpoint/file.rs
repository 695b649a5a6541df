//! Writing a checkpoint file safely.
//!
//! A save first checks its target ([`check_writable_target`]): `path` must be a
//! regular file or not exist yet, in a directory that exists. Anything else is
//! refused before a byte is written: a device (saving to `/dev/full` as root would
//! otherwise replace the device node with a file), a directory, a FIFO, a socket, and
//! a symbolic link, which is neither followed nor replaced. Directories are never
//! created: a training loop creates its output directory itself.
//!
//! It then writes `<path>.tmp-<pid>-<n>` next to `path` (`<pid>` the process id, `<n>`
//! a counter), flushes and `fsync`s it, renames it over `path`, and syncs the
//! directory. A crash at any point leaves the previous checkpoint intact; a process
//! killed mid-save leaves its temporary behind, and the next save to the same `path`
//! by another process removes it (see [`write_atomic`]).

use std::fs::{self, File, FileType, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CheckpointError, CheckpointErrorKind};

/// Check, without touching `path`, that a checkpoint can be saved there: what a
/// training loop calls before it trains, so that a bad `--save` fails at once rather
/// than after hours.
///
/// `path` must name a regular file or nothing yet, in an existing directory where this
/// process may create files. Symbolic links are refused, not followed: save to the
/// path the link points to. The directory is checked by creating and removing an
/// empty temporary file next to `path`, as a save would (the only reliable test of
/// write permission, read-only mounts and ACLs included); `path` itself is never
/// opened.
///
/// # Errors
/// [`CheckpointErrorKind::InvalidTarget`] saying what is wrong: `path` is a directory,
/// a device, a FIFO, a socket or a symbolic link, or its directory is missing, is not
/// a directory or is not writable. [`CheckpointErrorKind::Io`] when the file system
/// cannot say.
pub fn check_writable_target(path: impl AsRef<Path>) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    check_target(path)?;
    let probe = temporary_path(path);
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(refuse(
            path,
            format!(
                "the directory {} is not writable: {e}",
                parent_dir(path).display()
            ),
        )),
    }
}

/// The checks of [`check_writable_target`] that need no write.
fn check_target(path: &Path) -> Result<(), CheckpointError> {
    if path.file_name().is_none() {
        return Err(refuse(path, "the path does not name a file".into()));
    }
    let dir = parent_dir(path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(refuse(
                path,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(refuse(
                path,
                format!(
                    "the directory {} does not exist (saving does not create it)",
                    dir.display()
                ),
            ));
        }
        Err(e) => return Err(CheckpointError::new(path, CheckpointErrorKind::Io(e))),
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => Err(refuse(path, what_it_is(m.file_type()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CheckpointError::new(path, CheckpointErrorKind::Io(e))),
    }
}

/// Why a file of type `t` is no target.
fn what_it_is(t: FileType) -> String {
    let what = if t.is_symlink() {
        return "it is a symbolic link; checkpoints are not saved through symlinks, nor do they replace \
                them: save to the path it points to"
            .into();
    } else if t.is_dir() {
        "a directory"
    } else {
        special_file_kind(t).unwrap_or("not a regular file either")
    };
    format!("it is {what}, not a regular file")
}

/// The name of a Unix special file type.
#[cfg(unix)]
fn special_file_kind(t: FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        None
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: FileType) -> Option<&'static str> {
    None
}

/// An [`CheckpointErrorKind::InvalidTarget`] error.
fn refuse(path: &Path, why: String) -> CheckpointError {
    CheckpointError::new(path, CheckpointErrorKind::InvalidTarget(why))
}

/// A fresh temporary name next to `path`: `<file name>.tmp-<pid>-<n>`.
fn temporary_path(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    path.with_file_name(name)
}

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
///
/// # Errors
/// A target that [`check_writable_target`] refuses (checked first, without the write
/// probe), or an I/O failure; the temporary file is then removed and any existing
/// `path` is untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    check_target(path)?;
    remove_stale_temporaries(path);
    let tmp = temporary_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CheckpointError::new(path, CheckpointErrorKind::Io(e)));
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
    let Some(prefix) = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| format!("{n}.tmp-"))
    else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    let own_pid = std::process::id().to_string();
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, n)) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix)?.split_once('-'))
        else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if decimal(pid) && decimal(n) && pid != own_pid && is_file {
            let _ = fs::remove_file(entry.path());
        }
    }
}
