//! Reading what a training run wrote: the per-epoch metrics CSV and the long-form
//! diagnostics CSV of [`fit`](crate::train::fit).
//!
//! A run killed mid-write leaves a last line without its newline; that line is not
//! a row yet and is ignored, as the training loop itself ignores it on resume.

use std::fs;
use std::path::{Path, PathBuf};

use super::StudyError;

/// A metrics CSV: a header whose first column is `epoch`, then one row of numbers per
/// epoch (`train_loss`, `test_acc`, `sgd_mode_fraction`, `epoch_seconds`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsTable {
    /// Where it was read from.
    pub path: PathBuf,
    /// The column names, `epoch` first.
    pub columns: Vec<String>,
    /// One row per epoch, as many values as columns.
    pub rows: Vec<Vec<f64>>,
}

impl MetricsTable {
    /// Read and check the file at `path`.
    ///
    /// # Errors
    /// A [`StudyError`] naming the file (and line) when it cannot be read, has no
    /// header, a first column other than `epoch`, a row of the wrong length or a value
    /// that is not a number.
    pub fn read(path: &Path) -> Result<MetricsTable, StudyError> {
        let text =
            fs::read_to_string(path).map_err(|e| StudyError::new(path, None, e.to_string()))?;
        MetricsTable::parse(&text, path)
    }

    /// Parse CSV text; `path` only names the source in errors.
    ///
    /// # Errors
    /// As [`MetricsTable::read`].
    pub fn parse(text: &str, path: &Path) -> Result<MetricsTable, StudyError> {
        let mut lines = complete_lines(text);
        let Some((_, header)) = lines.next() else {
            return Err(StudyError::new(path, None, "empty: no header line"));
        };
        let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
        if columns[0] != "epoch" {
            return Err(StudyError::new(
                path,
                Some(1),
                format!(
                    "the first column is `{}`, not `epoch`: not a metrics file of the training loop",
                    columns[0]
                ),
            ));
        }
        let mut rows = Vec::new();
        for (number, line) in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != columns.len() {
                return Err(StudyError::new(
                    path,
                    Some(number),
                    format!("{} values for {} columns", fields.len(), columns.len()),
                ));
            }
            let row = fields
                .iter()
                .zip(&columns)
                .map(|(field, column)| parse_number(field, column, path, number))
                .collect::<Result<Vec<f64>, _>>()?;
            rows.push(row);
        }
        Ok(MetricsTable {
            path: path.to_path_buf(),
            columns,
            rows,
        })
    }

    /// The values of column `name`, one per epoch; `None` when there is no such column.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let index = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|row| row[index]).collect())
    }

    /// Whether the file holds exactly the epochs `1..=epochs`, in order: a finished run.
    pub fn has_epochs(&self, epochs: usize) -> bool {
        self.rows.len() == epochs
            && self
                .rows
                .iter()
                .enumerate()
                .all(|(i, row)| row[0] == (i + 1) as f64)
    }
}

/// One row of a diagnostics CSV (`epoch,step,param,key,value`): the mean of `key` for
/// parameter `param` over the steps since the previous row.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosticRow {
    pub epoch: usize,
    /// The global step (1-based, counted over all epochs) that ends the interval.
    pub step: usize,
    pub param: String,
    pub key: String,
    pub value: f64,
}

/// Read a diagnostics CSV.
///
/// # Errors
/// A [`StudyError`] naming the file and line: unreadable, a header other than
/// `epoch,step,param,key,value`, a row of the wrong length or a field that is not a number.
pub fn read_diagnostics(path: &Path) -> Result<Vec<DiagnosticRow>, StudyError> {
    let text = fs::read_to_string(path).map_err(|e| StudyError::new(path, None, e.to_string()))?;
    parse_diagnostics(&text, path)
}

/// Parse the text of a diagnostics CSV; `path` only names the source in errors.
///
/// # Errors
/// As [`read_diagnostics`].
pub fn parse_diagnostics(text: &str, path: &Path) -> Result<Vec<DiagnosticRow>, StudyError> {
    const HEADER: &str = "epoch,step,param,key,value";
    let mut lines = complete_lines(text);
    match lines.next() {
        None => return Ok(Vec::new()),
        Some((_, header)) if header.trim() == HEADER => {}
        Some((_, header)) => {
            return Err(StudyError::new(
                path,
                Some(1),
                format!("header `{header}`, expected `{HEADER}`"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (number, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let [epoch, step, param, key, value] = fields[..] else {
            return Err(StudyError::new(
                path,
                Some(number),
                format!("{} fields, expected 5", fields.len()),
            ));
        };
        let whole = |field: &str, column: &str| {
            field.trim().parse::<usize>().map_err(|_| {
                StudyError::new(
                    path,
                    Some(number),
                    format!("{column} `{field}` is not a whole number"),
                )
            })
        };
        rows.push(DiagnosticRow {
            epoch: whole(epoch, "epoch")?,
            step: whole(step, "step")?,
            param: param.to_string(),
            key: key.to_string(),
            value: parse_number(value, "value", path, number)?,
        });
    }
    Ok(rows)
}

/// The complete (newline-terminated, non-empty) lines of `text` with their 1-based
/// numbers, without the line ending.
fn complete_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n')
        .enumerate()
        .filter(|(_, line)| line.ends_with('\n'))
        .map(|(i, line)| (i + 1, line.trim_end_matches(['\n', '\r'])))
        .filter(|(_, line)| !line.is_empty())
}

fn parse_number(field: &str, column: &str, path: &Path, line: usize) -> Result<f64, StudyError> {
    field.trim().parse::<f64>().map_err(|_| {
        StudyError::new(
            path,
            Some(line),
            format!("{column} `{field}` is not a number"),
        )
    })
}
