//! Per-epoch metrics as CSV, consistent with the checkpoint after any crash.
//!
//! Each row starts with the epoch it belongs to. A run writes an epoch's row before its
//! checkpoint; a kill between the two leaves a row the checkpoint does not cover, so a
//! resumed run first cuts the file back to the checkpoint's epoch (dropping any later
//! row and any half-written line) and then writes that epoch again. After any kill the
//! file and the checkpoint agree: no epoch is missing and none appears twice.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::TrainError;

/// A CSV file of rows whose first column is the epoch. The header is the column names
/// of the first row written (or of the file being resumed).
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
    header: Option<Vec<String>>,
}

impl MetricsLog {
    /// Start a new file at `path` (making its directory, replacing an old file).
    ///
    /// # Errors
    /// When the directory or the file cannot be created; the message names the path.
    pub fn create(path: &Path) -> Result<MetricsLog, TrainError> {
        make_parent(path)?;
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            header: None,
        })
    }

    /// Continue the file of a run resumed after `epoch` epochs: keep its header and the
    /// rows of epochs `1..=epoch`, drop everything after them, then append. A missing
    /// file is started afresh.
    ///
    /// # Errors
    /// When the file cannot be read or rewritten, or its first column is not `epoch`.
    pub fn resume(path: &Path, epoch: usize) -> Result<MetricsLog, TrainError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return MetricsLog::create(path),
            Err(e) => return Err(io_error(path, e)),
        };
        let (kept, header) = rows_up_to(&text, epoch).ok_or_else(|| {
            TrainError::Data(format!(
                "{}: not a metrics file of this program",
                path.display()
            ))
        })?;
        let temporary = path.with_extension("csv.resume-tmp");
        fs::write(&temporary, &kept).map_err(|e| io_error(&temporary, e))?;
        fs::rename(&temporary, path).map_err(|e| io_error(path, e))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            header,
        })
    }

    /// Append one row of `(column, value)` pairs, flushed to the file before returning
    /// (so a checkpoint written afterwards never gets ahead of it).
    ///
    /// # Errors
    /// A write failure, or columns other than the file's (a resumed run of another kind).
    pub fn row(&mut self, values: &[(String, String)]) -> Result<(), TrainError> {
        let columns: Vec<String> = values.iter().map(|(c, _)| c.clone()).collect();
        match &self.header {
            None => {
                writeln!(self.out, "{}", columns.join(",")).map_err(|e| io_error(&self.path, e))?;
                self.header = Some(columns);
            }
            Some(header) if *header != columns => {
                return Err(TrainError::Data(format!(
                    "{}: has columns {header:?}, this run writes {columns:?}; use another --metrics file",
                    self.path.display()
                )));
            }
            Some(_) => {}
        }
        let line: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
        writeln!(self.out, "{}", line.join(",")).map_err(|e| io_error(&self.path, e))?;
        self.out.flush().map_err(|e| io_error(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| io_error(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The header line and the complete rows whose epoch (first column) is at most `epoch`,
/// and the header's columns; `None` when the text does not look like such a file.
fn rows_up_to(text: &str, epoch: usize) -> Option<(String, Option<Vec<String>>)> {
    let mut lines = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
    let Some(header) = lines.next() else {
        return Some((String::new(), None));
    };
    let columns: Vec<String> = header.trim_end().split(',').map(str::to_string).collect();
    if columns.first().map(String::as_str) != Some("epoch") {
        return None;
    }
    let mut kept = header.to_string();
    for line in lines {
        let row_epoch: usize = line.split(',').next()?.trim().parse().ok()?;
        if row_epoch <= epoch {
            kept.push_str(line);
        }
    }
    Some((kept, Some(columns)))
}

/// Create the directory `path` lives in.
pub(crate) fn make_parent(path: &Path) -> Result<(), TrainError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => fs::create_dir_all(dir).map_err(|e| io_error(dir, e)),
        None => Ok(()),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::rows_up_to;

    #[test]
    fn rows_after_the_epoch_and_half_lines_are_dropped() {
        let text = "epoch,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2";
        let (kept, header) = rows_up_to(text, 2).unwrap();
        assert_eq!(kept, "epoch,loss\n1,0.5\n2,0.4\n");
        assert_eq!(header.unwrap(), ["epoch", "loss"]);
        assert_eq!(rows_up_to(text, 0).unwrap().0, "epoch,loss\n");
        assert!(rows_up_to("loss,epoch\n1,2\n", 1).is_none());
        assert_eq!(rows_up_to("", 3).unwrap(), (String::new(), None));
    }
}
