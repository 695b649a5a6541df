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

use std::collections::{BTreeMap, HashSet};

use super::CheckpointErrorKind;
use crate::tensor::Tensor;

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
        DTYPES.iter().find(|d| d.0 == self).expect("every dtype is in DTYPES").1
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        DTYPES.iter().find(|d| d.0 == self).expect("every dtype is in DTYPES").2
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
        RawTensor { dtype: Dtype::F32, shape: t.shape().to_vec(), bytes }
    }

    /// An `I64` tensor of the (whole-number) values of `t`, row-major.
    pub fn i64(t: &Tensor) -> RawTensor {
        let bytes = t.to_vec().iter().flat_map(|&x| (x as i64).to_le_bytes()).collect();
        RawTensor { dtype: Dtype::I64, shape: t.shape().to_vec(), bytes }
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
            return Err(CheckpointErrorKind::InvalidInput(format!("duplicate tensor name {name:?}")));
        }
    }
    let mut sorted: Vec<&(String, RawTensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));

    let mut header = String::from("{");
    let mut entries = Vec::new();
    if !metadata.is_empty() {
        let pairs: Vec<String> =
            metadata.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
        entries.push(format!("\"__metadata__\":{{{}}}", pairs.join(",")));
    }
    let mut offset = 0;
    for (name, t) in &sorted {
        debug_assert_eq!(t.bytes.len(), t.shape.iter().product::<usize>() * t.dtype.size());
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
