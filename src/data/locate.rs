//! Where a data set lives: one search order shared by every example.
//!
//! Only MNIST is committed to the repository. The other data sets (PTB, MovieLens-100k,
//! the CTR samples) have licences that forbid redistribution, so each user puts them
//! somewhere and the examples find them with [`find_dataset`]:
//!
//! 1. the directory given by the example's command-line flag;
//! 2. the directory in the data set's own environment variable (e.g. `AGDLAB_MNIST`);
//! 3. `$AGDLAB_DATA/<name>`, a root holding several data sets;
//! 4. `data/<name>` under the crate root (this repository), then under the working
//!    directory;
//! 5. `../shared/data/<name>` relative to the crate root, then to the working directory.
//!
//! A flag or a data-set variable is an explicit choice: if it names a directory that
//! lacks the files, that is an error at once rather than a silent fall-back to some
//! other copy. The other places are tried in turn. When none fits, the error lists the
//! files needed, every place looked with what was missing there, and where to put them.

use std::env;
use std::path::{Path, PathBuf};

use super::{DataError, DataErrorKind};

/// The environment variable naming a root directory that holds data sets by name.
pub const DATA_ROOT_ENV: &str = "AGDLAB_DATA";

/// Find the directory of data set `name` holding all of `required_files`.
///
/// Each entry of `required_files` is a file name, or several accepted names joined by
/// `|` (for example `"train-images-idx3-ubyte.gz|train-images-idx3-ubyte"`). The search
/// order is in the [module documentation](self). `env_var` names a variable that points
/// at the data set's directory itself; pass `""` for none. If `env_var` is
/// [`DATA_ROOT_ENV`] it is read as a root, like step 3.
///
/// # Errors
/// [`DataErrorKind::NotFound`] when no place holds every required file, or when the
/// flag or `env_var` is set but names a directory that does not.
pub fn find_dataset(
    name: &str,
    flag: Option<&Path>,
    env_var: &str,
    required_files: &[&str],
) -> Result<PathBuf, DataError> {
    let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recommended = crate_root.join("data").join(name);
    let not_found = |looked: Vec<(PathBuf, String)>| {
        DataError::new(
            &recommended,
            DataErrorKind::NotFound {
                name: name.to_string(),
                required: required_files.iter().map(|s| s.to_string()).collect(),
                looked,
                env_var: if env_var.is_empty() {
                    DATA_ROOT_ENV.to_string()
                } else {
                    env_var.to_string()
                },
            },
        )
    };

    // Explicit choices: use them or fail, never fall back silently.
    if let Some(dir) = flag {
        return match check_dir(dir, required_files) {
            Ok(()) => Ok(dir.to_path_buf()),
            Err(why) => Err(not_found(vec![(
                dir.to_path_buf(),
                format!("given by flag; {why}"),
            )])),
        };
    }
    if !env_var.is_empty() && env_var != DATA_ROOT_ENV {
        if let Some(dir) = env::var_os(env_var).filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            return match check_dir(&dir, required_files) {
                Ok(()) => Ok(dir),
                Err(why) => Err(not_found(vec![(
                    dir,
                    format!("given by ${env_var}; {why}"),
                )])),
            };
        }
    }

    // The default places, in order.
    let mut candidates: Vec<(PathBuf, String)> = Vec::new();
    if let Some(root) = env::var_os(DATA_ROOT_ENV).filter(|v| !v.is_empty()) {
        candidates.push((
            PathBuf::from(root).join(name),
            format!("${DATA_ROOT_ENV}/{name}"),
        ));
    }
    let cwd = env::current_dir().ok();
    candidates.push((recommended.clone(), "crate root".into()));
    if let Some(cwd) = &cwd {
        candidates.push((cwd.join("data").join(name), "working directory".into()));
    }
    let beside = |dir: &Path| {
        dir.parent()
            .unwrap_or(dir)
            .join("shared")
            .join("data")
            .join(name)
    };
    candidates.push((beside(crate_root), "shared, beside the crate root".into()));
    if let Some(cwd) = &cwd {
        candidates.push((beside(cwd), "shared, beside the working directory".into()));
    }

    let mut looked: Vec<(PathBuf, String)> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for (dir, origin) in candidates {
        let key = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        match check_dir(&dir, required_files) {
            Ok(()) => return Ok(dir),
            Err(why) => looked.push((dir, format!("{origin}; {why}"))),
        }
    }
    Err(not_found(looked))
}

/// `Ok` when `dir` holds one of the accepted names of every required file; otherwise
/// why not, in words: which files are missing, and which are directories instead.
fn check_dir(dir: &Path, required_files: &[&str]) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            "not a directory".into()
        } else {
            "does not exist".into()
        });
    }
    let mut missing: Vec<&str> = Vec::new();
    let mut directories: Vec<&str> = Vec::new();
    for entry in required_files {
        let names = || entry.split('|');
        if names().any(|f| dir.join(f).is_file()) {
            continue;
        }
        match names().find(|f| dir.join(f).is_dir()) {
            Some(name) => directories.push(name),
            None => missing.push(names().next().unwrap_or(entry)),
        }
    }
    let mut problems: Vec<String> = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    problems.extend(
        directories
            .iter()
            .map(|name| format!("{name} is a directory, not a file")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
