//! The safetensors byte format, written deterministically.
//!
//! ```text
//! [8 bytes: header length n, u64 little-endian]
//! [n bytes: JSON header, padded with spaces to a multiple of 8]
//! [tensor data, little-endian, back to back in the header's order]
//! ```
//!
//! The header is one JSON object: `"__metadata__"` first (a map of strings, keys in
//! sorted order; left out when empty), then one entry per tensor in name order,
//! `"name":{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}`, with offsets
//! relative to the start of the data. The JSON text is built here, key by key, rather
//! than by serialising a map, so the same content always gives the same bytes whatever
//! the process, hash seed or `serde_json` features (two saves of one run hash alike).
//! `serde_json` only escapes the strings.
//!
//! The reference writer (the `safetensors` libraries) pads the header the same way but
//! orders tensors by dtype width before name; both readers accept either order.
//!
//! Reading checks everything before it copies any data, in this order, and names the
//! first problem it finds (and the tensor, where there is one):
//!
//! 1. the file holds the 8-byte length, the length is plausible (at most 100 MB) and
//!    the header fits in the file ([`Truncated`](CheckpointErrorKind::Truncated) or
//!    [`NotSafetensors`](CheckpointErrorKind::NotSafetensors));
//! 2. the header is UTF-8 and a JSON object (`NotSafetensors`) that repeats no key,
//!    neither a tensor name nor a field within an entry nor a metadata key
//!    (`BadTensor` or `BadMetadata`);
//! 3. each tensor entry, in name order, has a known `dtype`, a `shape` of non-negative
//!    integers whose size in bytes fits in a `usize`, and `data_offsets` `[begin, end]`
//!    spanning exactly that size ([`BadTensor`](CheckpointErrorKind::BadTensor));
//! 4. sorted by offset, the tensors tile the data section: each begins where the
//!    previous one ends, the first at 0 (`BadTensor`, naming both tensors);
//! 5. the data section ends where the last tensor does (`Truncated` or
//!    [`TrailingBytes`](CheckpointErrorKind::TrailingBytes));
//! 6. `__metadata__`, if present and not `null`, maps strings to strings
//!    ([`BadMetadata`](CheckpointErrorKind::BadMetadata)).
//!
//! The JSON is parsed by `serde_json` into a [`Value`]; nothing depends on the order in
//! which its maps keep their keys.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::CheckpointErrorKind;
use crate::tensor::Tensor;

/// The reference reader refuses JSON headers above this size (100 MB); so do we.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// The tensor element types of the safetensors format, under the names it gives them
/// (so `{:?}` prints the name used in files and error messages).
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

/// Every dtype with its name in the header and its size in bytes.
const DTYPES: [(Dtype, &str, usize); 15] = [
    (Dtype::BOOL, "BOOL", 1),
    (Dtype::U8, "U8", 1),
    (Dtype::I8, "I8", 1),
    (Dtype::F8_E5M2, "F8_E5M2", 1),
    (Dtype::F8_E4M3, "F8_E4M3", 1),
    (Dtype::I16, "I16", 2),
    (Dtype::U16, "U16", 2),
    (Dtype::F16, "F16", 2),
    (Dtype::BF16, "BF16", 2),
    (Dtype::I32, "I32", 4),
    (Dtype::U32, "U32", 4),
    (Dtype::F32, "F32", 4),
    (Dtype::F64, "F64", 8),
    (Dtype::I64, "I64", 8),
    (Dtype::U64, "U64", 8),
];

impl Dtype {
    /// The name in the header (`"F32"`).
    pub fn name(self) -> &'static str {
        DTYPES
            .iter()
            .find(|d| d.0 == self)
            .expect("every dtype is in DTYPES")
            .1
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        DTYPES
            .iter()
            .find(|d| d.0 == self)
            .expect("every dtype is in DTYPES")
            .2
    }

    /// The dtype a header names, if it is one of the above.
    pub fn from_name(name: &str) -> Option<Dtype> {
        DTYPES.iter().find(|d| d.1 == name).map(|d| d.0)
    }
}

/// A tensor's little-endian bytes, with their dtype and shape: what the writer takes
/// and what the reader gives back.
pub(crate) struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl RawTensor {
    /// An `F32` tensor, row-major.
    pub fn f32(t: &Tensor) -> RawTensor {
        let bytes = t.to_vec().iter().flat_map(|x| x.to_le_bytes()).collect();
        RawTensor {
            dtype: Dtype::F32,
            shape: t.shape().to_vec(),
            bytes,
        }
    }

    /// An `I64` tensor of the (whole-number) values of `t`, row-major.
    pub fn i64(t: &Tensor) -> RawTensor {
        let bytes = t
            .to_vec()
            .iter()
            .flat_map(|&x| (x as i64).to_le_bytes())
            .collect();
        RawTensor {
            dtype: Dtype::I64,
            shape: t.shape().to_vec(),
            bytes,
        }
    }
}

/// Serialise named tensors and metadata as safetensors bytes, laid out as the
/// [module documentation](self) says: the same input always gives the same bytes.
///
/// # Errors
/// Duplicate names or the reserved name `__metadata__`.
pub(crate) fn serialize(
    tensors: &[(String, RawTensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CheckpointErrorKind> {
    let mut seen = HashSet::new();
    for (name, _) in tensors {
        if name == "__metadata__" {
            return Err(CheckpointErrorKind::InvalidInput(
                "the tensor name \"__metadata__\" is reserved by safetensors".into(),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(CheckpointErrorKind::InvalidInput(format!(
                "duplicate tensor name {name:?}"
            )));
        }
    }
    let mut sorted: Vec<&(String, RawTensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));

    let mut header = String::from("{");
    let mut entries = Vec::new();
    if !metadata.is_empty() {
        let pairs: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
            .collect();
        entries.push(format!("\"__metadata__\":{{{}}}", pairs.join(",")));
    }
    let mut offset = 0;
    for (name, t) in &sorted {
        debug_assert_eq!(
            t.bytes.len(),
            t.shape.iter().product::<usize>() * t.dtype.size()
        );
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        let end = offset + t.bytes.len();
        entries.push(format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json_string(name),
            t.dtype.name(),
            shape.join(",")
        ));
        offset = end;
    }
    header.push_str(&entries.join(","));
    header.push('}');
    // Pad to a multiple of 8 bytes, as the reference writer does, so the data starts
    // 8-aligned in the file.
    while header.len() % 8 != 0 {
        header.push(' ');
    }

    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, t) in sorted {
        out.extend_from_slice(&t.bytes);
    }
    Ok(out)
}

/// `s` as a JSON string literal, quotes included.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises as JSON")
}

// ------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------

/// A parsed safetensors file: named raw tensors in file (offset) order, and the metadata.
pub(crate) type ParsedFile = (Vec<(String, RawTensor)>, BTreeMap<String, String>);

/// Parse safetensors bytes into named raw tensors (in file order) and the metadata,
/// validating in the order the [module documentation](self) lists.
///
/// # Errors
/// The first problem found, as a [`CheckpointErrorKind`] naming the tensor or metadata
/// key concerned.
pub(crate) fn parse_raw(bytes: &[u8]) -> Result<ParsedFile, CheckpointErrorKind> {
    let (header, data) = split_frame(bytes)?;
    let header = parse_header(header)?;

    // Every tensor entry on its own, in name order (whatever order the map keeps).
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort();
    let mut infos = names
        .into_iter()
        .map(|name| tensor_info(name, &header[name.as_str()]))
        .collect::<Result<Vec<_>, _>>()?;

    // Together: sorted by offset, the tensors must tile the data section.
    infos.sort_by(|a, b| (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name)));
    let mut expected = 0;
    let mut previous: Option<&str> = None;
    for info in &infos {
        if info.begin != expected {
            let (begin, end) = (info.begin, info.end);
            let problem = match previous {
                Some(p) => format!(
                    "data_offsets [{begin}, {end}] should begin at {expected}, where the previous \
                     tensor {p:?} ends"
                ),
                None => format!(
                    "data_offsets [{begin}, {end}] should begin at 0, where the data begins"
                ),
            };
            return Err(CheckpointErrorKind::BadTensor {
                tensor: info.name.clone(),
                problem,
            });
        }
        expected = info.end;
        previous = Some(&info.name);
    }
    let found = data.len() as u64;
    if found != expected {
        let why =
            format!("the header describes {expected} bytes of tensor data, the file holds {found}");
        return Err(if found < expected {
            CheckpointErrorKind::Truncated(why)
        } else {
            CheckpointErrorKind::TrailingBytes(why)
        });
    }

    let metadata = parse_metadata(header.get("__metadata__"))?;

    // Every offset is now known to lie within `data`.
    let tensors = infos
        .into_iter()
        .map(|info| {
            let bytes = data[info.begin as usize..info.end as usize].to_vec();
            (
                info.name,
                RawTensor {
                    dtype: info.dtype,
                    shape: info.shape,
                    bytes,
                },
            )
        })
        .collect();
    Ok((tensors, metadata))
}

/// The header bytes and the data bytes of a file, once the length prefix is checked.
fn split_frame(bytes: &[u8]) -> Result<(&[u8], &[u8]), CheckpointErrorKind> {
    use CheckpointErrorKind::{NotSafetensors, Truncated};
    let len = bytes.len() as u64;
    let Some((prefix, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(Truncated(format!(
            "the file is {len} bytes, shorter than the 8-byte header length"
        )));
    };
    let n = u64::from_le_bytes(*prefix);
    if n > MAX_HEADER_LEN {
        return Err(NotSafetensors(format!(
            "header length {n} is implausible (over 100 MB)"
        )));
    }
    // Checked before the length, so that a cut-off file of another format is called
    // what it is rather than a truncated safetensors file.
    if let Some(&first) = rest.first().filter(|_| n > 0) {
        if first != b'{' {
            return Err(NotSafetensors(format!(
                "the JSON header must start with '{{', found byte 0x{first:02x}"
            )));
        }
    }
    if n > rest.len() as u64 {
        return Err(Truncated(format!(
            "the header length says {n} bytes of JSON header, but only {} bytes follow",
            rest.len()
        )));
    }
    Ok(rest.split_at(n as usize))
}

/// The header as a JSON object.
fn parse_header(header: &[u8]) -> Result<serde_json::Map<String, Value>, CheckpointErrorKind> {
    use CheckpointErrorKind::NotSafetensors;
    let text = std::str::from_utf8(header)
        .map_err(|e| NotSafetensors(format!("the header is not UTF-8: {e}")))?;
    let map = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(NotSafetensors(format!(
                "the header must be a JSON object, found {}",
                brief(&other)
            )));
        }
        Err(e) => return Err(NotSafetensors(format!("the header is not valid JSON: {e}"))),
    };
    let twice = || "defined twice in the header".to_string();
    match repeated_key(text) {
        None => Ok(map),
        Some(Repeat { entry: None, key }) if key == "__metadata__" => {
            Err(CheckpointErrorKind::BadMetadata {
                key,
                problem: twice(),
            })
        }
        Some(Repeat { entry: None, key }) => Err(CheckpointErrorKind::BadTensor {
            tensor: key,
            problem: twice(),
        }),
        Some(Repeat {
            entry: Some(entry),
            key,
        }) if entry == "__metadata__" => Err(CheckpointErrorKind::BadMetadata {
            key,
            problem: twice(),
        }),
        Some(Repeat {
            entry: Some(entry),
            key,
        }) => Err(CheckpointErrorKind::BadTensor {
            tensor: entry,
            problem: format!("the entry repeats the field {key:?}"),
        }),
    }
}

/// A key that a JSON object repeats: at the top level of the header (`entry` is
/// `None`), or in the object of the top-level entry `entry`.
struct Repeat {
    entry: Option<String>,
    key: String,
}

/// The first key repeated within one object of `text` (valid JSON), at the top level or
/// one level down, where the tensor entries and the metadata live.
///
/// `serde_json::Value` silently keeps the last of repeated keys, which would let a
/// second definition of a tensor (or of its `shape`) hide the first; the reference
/// reader refuses some repeats and takes the last of others. We refuse them all. The
/// scan needs only JSON's punctuation: brackets open and close objects and arrays, a
/// comma in an object is followed by a key, and strings (with their escapes) are
/// skipped whole. Every byte it looks for is ASCII, so it never splits a UTF-8
/// character.
fn repeated_key(text: &str) -> Option<Repeat> {
    /// An open object (with its keys so far, kept at the first two levels) or array.
    struct Open {
        object: bool,
        keys: HashSet<String>,
        expecting_key: bool,
    }
    let bytes = text.as_bytes();
    let mut open: Vec<Open> = Vec::new();
    let mut entry: Option<String> = None; // the current top-level key
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let depth = open.len();
                if let Some(o) = open.last_mut().filter(|o| o.object && o.expecting_key) {
                    o.expecting_key = false;
                    if depth <= 2 {
                        let key: String = serde_json::from_str(text.get(start..=i)?).ok()?;
                        if !o.keys.insert(key.clone()) {
                            return Some(Repeat {
                                entry: if depth == 1 { None } else { entry },
                                key,
                            });
                        }
                        if depth == 1 {
                            entry = Some(key);
                        }
                    }
                }
            }
            b'{' => open.push(Open {
                object: true,
                keys: HashSet::new(),
                expecting_key: true,
            }),
            b'[' => open.push(Open {
                object: false,
                keys: HashSet::new(),
                expecting_key: false,
            }),
            b'}' | b']' => {
                open.pop();
            }
            b',' => {
                if let Some(o) = open.last_mut().filter(|o| o.object) {
                    o.expecting_key = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One tensor's header entry, checked on its own.
struct TensorInfo {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

/// Check the entry `name: value` of the header: a known dtype, a shape of reasonable
/// size, and offsets spanning exactly that size.
fn tensor_info(name: &str, value: &Value) -> Result<TensorInfo, CheckpointErrorKind> {
    let bad = |problem: String| CheckpointErrorKind::BadTensor {
        tensor: name.to_string(),
        problem,
    };
    let Value::Object(entry) = value else {
        return Err(bad(format!(
            "the entry must be an object with \"dtype\", \"shape\" and \"data_offsets\", found {}",
            brief(value)
        )));
    };
    let field = |key: &str| entry.get(key).ok_or_else(|| bad(format!("no {key:?}")));

    let dtype = match field("dtype")? {
        Value::String(s) => {
            Dtype::from_name(s).ok_or_else(|| bad(format!("unknown dtype {s:?}")))?
        }
        other => {
            return Err(bad(format!(
                "\"dtype\" must be a string such as \"F32\", found {}",
                brief(other)
            )));
        }
    };
    let shape_value = field("shape")?;
    let shape = integers(shape_value)
        .and_then(|dims| {
            dims.into_iter()
                .map(|d| usize::try_from(d).ok())
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| {
            bad(format!(
                "\"shape\" must be a list of non-negative integers, found {}",
                brief(shape_value)
            ))
        })?;
    let offsets_value = field("data_offsets")?;
    let (begin, end) = match integers(offsets_value).as_deref() {
        Some(&[begin, end]) => (begin, end),
        _ => {
            return Err(bad(format!(
                "\"data_offsets\" must be two non-negative integers [begin, end], found {}",
                brief(offsets_value)
            )));
        }
    };
    if end < begin {
        return Err(bad(format!(
            "\"data_offsets\" [{begin}, {end}] end before they begin"
        )));
    }
    let size = byte_size(&shape, dtype).ok_or_else(|| {
        bad(format!(
            "shape {shape:?} is too large (its size in bytes overflows)"
        ))
    })?;
    if end - begin != size as u64 {
        return Err(bad(format!(
            "data_offsets [{begin}, {end}] hold {} bytes, but shape {shape:?} of {} needs {size}",
            end - begin,
            dtype.name()
        )));
    }
    Ok(TensorInfo {
        name: name.to_string(),
        dtype,
        shape,
        begin,
        end,
    })
}

/// The size in bytes of a tensor of `shape` and `dtype`, or `None` when the product of
/// its non-zero dimensions times the element size overflows a `usize`. A shape with a
/// zero has no elements, but its other dimensions still become strides, which must not
/// overflow either.
fn byte_size(shape: &[usize], dtype: Dtype) -> Option<usize> {
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))?;
    Some(if shape.contains(&0) { 0 } else { nonzero })
}

/// A JSON array of non-negative integers as numbers, else `None`.
fn integers(value: &Value) -> Option<Vec<u64>> {
    value.as_array()?.iter().map(Value::as_u64).collect()
}

/// The `__metadata__` entry as a string map; absent or `null` is empty.
fn parse_metadata(value: Option<&Value>) -> Result<BTreeMap<String, String>, CheckpointErrorKind> {
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(CheckpointErrorKind::BadMetadata {
                key: "__metadata__".into(),
                problem: format!("must be a map of strings, found {}", brief(other)),
            });
        }
    };
    let mut sorted: Vec<(&String, &Value)> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(CheckpointErrorKind::BadMetadata {
                key: key.clone(),
                problem: format!("the value must be a string, found {}", brief(other)),
            }),
        })
        .collect()
}

/// A JSON value as compact text, cut to a readable length for error messages.
fn brief(value: &Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// An `F32` raw tensor as a [`Tensor`].
pub(crate) fn decode_f32(name: &str, t: &RawTensor) -> Result<Tensor, CheckpointErrorKind> {
    let data: Vec<f32> = t
        .bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_vec(data, &t.shape).map_err(|e| CheckpointErrorKind::BadTensor {
        tensor: name.to_string(),
        problem: e.to_string(),
    })
}
