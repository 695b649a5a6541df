//! The Criteo display-advertising click logs (Kaggle 2014), and files in their format.
//!
//! # The format
//!
//! One example per line, 40 fields:
//!
//! ```text
//! label  I1 ... I13  C1 ... C26
//! 0|1    integers    categories: 32-bit hashes written as 8 hexadecimal digits
//! ```
//!
//! Any integer or category may be empty (missing). Kaggle's `train.txt` is
//! tab-separated with no header; the 200-line sample kept with DeepCTR (and in
//! `ctr-samples/criteo_sample.txt`) is comma-separated with the header
//! `label,I1,...,I13,C1,...,C26`, and writes some integers as `260.0`. Both are read:
//! the separator is the one found on the first line (a tab if it has one, else a
//! comma), and a first line none of whose fields is a number must be that header. A file
//! starting with the gzip magic is decompressed first. `\r\n` line ends are accepted.
//!
//! # Features
//!
//! Every field becomes one feature, a row of a table of [`CriteoOptions::table_size`]
//! rows found by hashing the field's number together with its value
//! ([`feature_row`]):
//!
//! - the 26 categories are hashed as they are; an empty one is the field's "missing"
//!   feature;
//! - the 13 integers are either bucketed ([`IntegerEncoding::Bucket`], the default):
//!   `x ≤ 2` is its own bucket `⌊x⌋`, a larger `x` goes to bucket `⌊(ln x)²⌋`, as in
//!   the winning Kaggle solution (Juan et al., "Field-aware Factorization Machines for
//!   CTR Prediction", RecSys 2016); or log-transformed ([`IntegerEncoding::Log`]): the
//!   field's one numeric feature with value `sign(x)·ln(1 + |x|)`, or its missing
//!   feature (value 1) when empty.
//!
//! # Errors
//!
//! A line that does not parse stops the read with a [`DataError`] naming the file, the
//! line number and the field (`criteo.txt:17: field I3: "2x" is not a number`), unless
//! [`CriteoOptions::skip_malformed`] asks to skip such lines and count them
//! ([`Skipped`]).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::ctr::{feature_row, CtrExamples, Skipped, Token};
use super::{DataError, DataErrorKind};

/// Integer fields per example (I1..I13).
pub const INTEGER_FIELDS: usize = 13;
/// Categorical fields per example (C1..C26).
pub const CATEGORICAL_FIELDS: usize = 26;
/// Fields per example: 13 integers and 26 categories.
pub const NUM_FIELDS: usize = INTEGER_FIELDS + CATEGORICAL_FIELDS;

/// How the 13 integer fields become features (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntegerEncoding {
    /// Buckets `⌊x⌋` for `x ≤ 2`, else `⌊(ln x)²⌋`: categorical features, value 1.
    #[default]
    Bucket,
    /// One numeric feature per field with value `sign(x)·ln(1 + |x|)`.
    Log,
}

/// How to read a Criteo file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriteoOptions {
    /// Rows of the hashed table (at least 1).
    pub table_size: usize,
    pub integers: IntegerEncoding,
    /// Skip lines that do not parse (counting them) instead of stopping at the first.
    pub skip_malformed: bool,
    /// Read at most this many examples.
    pub max_examples: Option<usize>,
}

impl Default for CriteoOptions {
    /// A table of 2^20 rows, bucketed integers, stop at the first malformed line.
    fn default() -> CriteoOptions {
        CriteoOptions {
            table_size: 1 << 20,
            integers: IntegerEncoding::Bucket,
            skip_malformed: false,
            max_examples: None,
        }
    }
}

/// The field names, `I1`..`I13` then `C1`..`C26`.
pub fn field_names() -> Vec<String> {
    let integers = (1..=INTEGER_FIELDS).map(|i| format!("I{i}"));
    integers
        .chain((1..=CATEGORICAL_FIELDS).map(|c| format!("C{c}")))
        .collect()
}

/// Read a Criteo file (plain or gzip'd) into examples: see the [module
/// documentation](self). With [`IntegerEncoding::Log`] the examples carry values.
/// Blank lines are passed over.
///
/// # Errors
/// The file cannot be read, is not valid gzip, has a header other than Criteo's, or
/// has a malformed line (unless `options.skip_malformed`); each error names the file,
/// and the line when there is one.
///
/// # Panics
/// When `options.table_size` is 0.
pub fn read_criteo(
    path: &Path,
    options: &CriteoOptions,
) -> Result<(CtrExamples, Skipped), DataError> {
    let file = File::open(path).map_err(|e| DataError::new(path, DataErrorKind::Io(e)))?;
    read_criteo_from(BufReader::new(file), path, options)
}

/// [`read_criteo`] from any reader; `path` is the name errors give. Gzip is recognised
/// by its magic number in the first bytes the reader has buffered.
///
/// # Errors
/// As [`read_criteo`].
///
/// # Panics
/// When `options.table_size` is 0.
pub fn read_criteo_from(
    mut reader: impl BufRead,
    path: &Path,
    options: &CriteoOptions,
) -> Result<(CtrExamples, Skipped), DataError> {
    assert!(
        options.table_size > 0,
        "read_criteo: the table needs at least one row"
    );
    let gzipped = reader
        .fill_buf()
        .map_err(|e| read_error(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    if gzipped {
        read_lines(BufReader::new(MultiGzDecoder::new(reader)), path, options)
    } else {
        read_lines(reader, path, options)
    }
}

fn read_lines(
    mut reader: impl BufRead,
    path: &Path,
    options: &CriteoOptions,
) -> Result<(CtrExamples, Skipped), DataError> {
    let with_values = options.integers == IntegerEncoding::Log;
    let mut examples = CtrExamples::empty(NUM_FIELDS, with_values);
    let mut skipped = Skipped::default();
    let mut separator = None;
    let (mut ids, mut values) = ([0u32; NUM_FIELDS], [1.0f32; NUM_FIELDS]);
    let mut line = Vec::new();
    for number in 1.. {
        if options
            .max_examples
            .is_some_and(|max| examples.len() >= max)
        {
            break;
        }
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| read_error(path, e))?
            == 0
        {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            continue; // blank lines (a file ending in two newlines) hold no example
        }
        let malformed = |problem: String| {
            DataError::new(
                path,
                DataErrorKind::Malformed {
                    line: number,
                    problem,
                },
            )
        };
        let sep = match separator {
            Some(sep) => sep,
            None => {
                // The first line decides the separator, and may be the header.
                let sep = if text.contains(&b'\t') { b'\t' } else { b',' };
                separator = Some(sep);
                if is_header(text, sep) {
                    check_header(text, sep).map_err(malformed)?;
                    continue;
                }
                sep
            }
        };
        match parse_line(text, sep, options, &mut ids, &mut values) {
            Ok(label) => examples.push(&ids, with_values.then_some(&values[..]), label),
            Err(problem) if options.skip_malformed => skipped.add(malformed(problem)),
            Err(problem) => return Err(malformed(problem)),
        }
    }
    Ok((examples, skipped))
}

fn read_error(path: &Path, e: io::Error) -> DataError {
    let kind = if e.kind() == io::ErrorKind::InvalidInput || e.kind() == io::ErrorKind::InvalidData
    {
        DataErrorKind::Gzip(e)
    } else {
        DataErrorKind::Io(e)
    };
    DataError::new(path, kind)
}

/// A first line none of whose fields is a number is taken for a header.
fn is_header(text: &[u8], sep: u8) -> bool {
    text.split(|&b| b == sep)
        .all(|field| parse_number(field.trim_ascii()).is_none())
}

/// The header must name Criteo's 40 columns, in order.
fn check_header(text: &[u8], sep: u8) -> Result<(), String> {
    let names: Vec<String> = text
        .split(|&b| b == sep)
        .map(|n| String::from_utf8_lossy(n).trim().to_string())
        .collect();
    let expected: Vec<String> = std::iter::once("label".to_string())
        .chain(field_names())
        .collect();
    if names.len() == expected.len()
        && names
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    {
        return Ok(());
    }
    let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
    Err(format!(
        "a header of {} column(s) ({}{}), but a Criteo file has 40: label, I1..I13, C1..C26",
        names.len(),
        shown.join(", "),
        if names.len() > 6 { ", ..." } else { "" }
    ))
}

/// Parse one example into `ids` and `values`; its label, or what is wrong.
fn parse_line(
    text: &[u8],
    sep: u8,
    options: &CriteoOptions,
    ids: &mut [u32; NUM_FIELDS],
    values: &mut [f32; NUM_FIELDS],
) -> Result<f32, String> {
    let mut fields = text.split(|&b| b == sep);
    let count = text.split(|&b| b == sep).count();
    if count != NUM_FIELDS + 1 {
        let sep_name = if sep == b'\t' { "tab" } else { "comma" };
        return Err(format!(
            "{count} {sep_name}-separated field(s), expected 40 (label, 13 integers, 26 categories)"
        ));
    }
    let label = match fields.next().unwrap_or_default() {
        b"0" | b"0.0" => 0.0,
        b"1" | b"1.0" => 1.0,
        other => {
            return Err(format!(
                "label {:?} is not 0 or 1",
                String::from_utf8_lossy(other)
            ));
        }
    };
    let table = options.table_size;
    for (field, raw) in fields.enumerate() {
        let raw = raw.trim_ascii();
        values[field] = 1.0;
        let token = if raw.is_empty() {
            Token::Missing
        } else if field < INTEGER_FIELDS {
            let x = parse_number(raw).ok_or_else(|| {
                format!(
                    "field I{}: {:?} is not a number",
                    field + 1,
                    String::from_utf8_lossy(raw)
                )
            })?;
            match options.integers {
                IntegerEncoding::Bucket => Token::Bucket(bucket(x)),
                IntegerEncoding::Log => {
                    values[field] = (x.signum() * x.abs().ln_1p()) as f32;
                    Token::Numeric
                }
            }
        } else {
            Token::Category(parse_hex(raw).ok_or_else(|| {
                format!(
                    "field C{}: {:?} is not a hexadecimal category (at most 16 digits)",
                    field - INTEGER_FIELDS + 1,
                    String::from_utf8_lossy(raw)
                )
            })?)
        };
        ids[field] = feature_row(field, token, table);
    }
    Ok(label)
}

/// A finite number (`260`, `260.0`, `-1`).
fn parse_number(raw: &[u8]) -> Option<f64> {
    let x: f64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    x.is_finite().then_some(x)
}

/// At most 16 hexadecimal digits, as a number.
fn parse_hex(raw: &[u8]) -> Option<u64> {
    if raw.len() > 16 || !raw.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(raw).ok()?, 16).ok()
}

/// The bucket of integer `x`: `⌊x⌋` up to 2, then `⌊(ln x)²⌋` (3 → 1, 10 → 5,
/// 1000 → 47, 10^9 → 429).
pub fn bucket(x: f64) -> i64 {
    if x <= 2.0 {
        x.floor() as i64
    } else {
        x.ln().powi(2).floor() as i64
    }
}
