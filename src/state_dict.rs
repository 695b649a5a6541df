//! PyTorch weights in and out: a module's parameters and buffers as a plain `state_dict`
//! in a safetensors file.
//!
//! The names are the module's dotted names (`fc1.weight`, `bn.running_mean`,
//! `rnn.weight_ih_l0`), the same PyTorch gives, so weights move both ways:
//!
//! ```text
//! # PyTorch -> agdlab
//! safetensors.torch.save_file(model.state_dict(), "weights.safetensors")
//! # agdlab -> PyTorch
//! model.load_state_dict(safetensors.torch.load_file("weights.safetensors"))
//! ```
//!
//! Loading checks every entry before it changes any, so a failed load leaves the model
//! as it was. Float tensors of any width load as `f32`; integer tensors (`int64` such as
//! `num_batches_tracked`) are converted too and listed in the [`LoadReport`], never a
//! reason to refuse the file. Integer buffers are saved as `int64`, as PyTorch keeps
//! them. PyTorch equivalent: `model.load_state_dict(sd, strict=...)` and
//! `model.state_dict()`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use crate::autograd::{Param, ShapeMismatch};
use crate::checkpoint::{
    decode_f32, parse_raw, serialize, write_atomic, CheckpointError, CheckpointErrorKind, Dtype,
    RawTensor,
};
use crate::nn::{Buffer, Item, Module, Walk};
use crate::tensor::Tensor;

/// One entry of a module's state: a trained parameter or a buffer.
#[derive(Clone, Debug)]
pub enum StateEntry {
    Param(Param),
    Buffer(Buffer),
}

impl StateEntry {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            StateEntry::Param(p) => p.shape(),
            StateEntry::Buffer(b) => b.shape(),
        }
    }

    pub fn value(&self) -> Tensor {
        match self {
            StateEntry::Param(p) => p.value(),
            StateEntry::Buffer(b) => b.value(),
        }
    }

    /// Replace the value.
    ///
    /// # Errors
    /// When the shape differs.
    pub fn set(&self, value: Tensor) -> Result<(), ShapeMismatch> {
        match self {
            StateEntry::Param(p) => p.set(value),
            StateEntry::Buffer(b) => b.set(value),
        }
    }

    /// Whether it holds whole numbers (saved as `int64`).
    pub fn is_integer(&self) -> bool {
        matches!(self, StateEntry::Buffer(b) if b.is_integer())
    }
}

/// Every parameter and buffer of `model`, with its dotted name, in declaration order:
/// what a PyTorch `state_dict()` holds.
pub fn state_entries(model: &dyn Module) -> Vec<(String, StateEntry)> {
    let mut out = Vec::new();
    model.visit(&mut Walk::new(&mut |item| match item {
        Item::Param(name, p) => out.push((name.to_string(), StateEntry::Param(p.clone()))),
        Item::Buffer(name, b) => out.push((name.to_string(), StateEntry::Buffer(b.clone()))),
        Item::Mode(_) => {}
    }));
    out
}

/// What [`load_state_dict`] did besides loading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Entries of the model the file did not have (left as they were).
    pub missing: Vec<String>,
    /// Tensors of the file the model does not have (ignored).
    pub unexpected: Vec<String>,
    /// Entries loaded from another dtype than `F32`, with that dtype (`"I64"`, `"F16"`).
    pub converted: Vec<(String, String)>,
}

impl LoadReport {
    /// True when every entry matched and none was converted.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.converted.is_empty()
    }
}

/// Load a PyTorch-style state dict (a safetensors file of plain names) into `model`.
///
/// With `strict`, every entry of the model must be in the file and every tensor of the
/// file in the model (PyTorch's default); otherwise the matching entries are loaded and
/// the rest reported. Shapes must match in both modes.
///
/// # Errors
/// Any error reading the file (named, as [`Checkpoint::load`](crate::checkpoint::Checkpoint::load)
/// gives them); a shape mismatch, naming the entry and both shapes; a dtype that is
/// neither a float nor an integer (`BOOL`, ...); with `strict`, missing or unexpected
/// entries, all of them listed. On error the model is untouched.
pub fn load_state_dict(
    model: &dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport, CheckpointError> {
    let path = path.as_ref();
    let err = |kind| CheckpointError::new(path, kind);
    let bytes = fs::read(path).map_err(|e| err(CheckpointErrorKind::Io(e)))?;
    let (raw, _metadata) = parse_raw(&bytes).map_err(err)?;
    let mut file: HashMap<String, RawTensor> = raw.into_iter().collect();

    let mut report = LoadReport::default();
    let mut updates = Vec::new();
    for (name, entry) in state_entries(model) {
        let Some(t) = file.remove(&name) else {
            report.missing.push(name);
            continue;
        };
        let expected = entry.shape();
        if t.shape != expected {
            return Err(err(CheckpointErrorKind::ShapeMismatch {
                tensor: name,
                expected,
                found: t.shape,
            }));
        }
        if t.dtype != Dtype::F32 {
            report
                .converted
                .push((name.clone(), format!("{:?}", t.dtype)));
        }
        let value = decode_any(&name, &t).map_err(err)?;
        updates.push((entry, value));
    }
    report.unexpected = file.into_keys().collect();
    report.unexpected.sort();
    if strict && !(report.missing.is_empty() && report.unexpected.is_empty()) {
        return Err(err(CheckpointErrorKind::KeyMismatch {
            missing: report.missing.clone(),
            unexpected: report.unexpected.clone(),
        }));
    }
    for (entry, value) in updates {
        entry.set(value).expect("shapes were checked above");
    }
    Ok(report)
}

/// Save `model`'s parameters and buffers to `path` (atomically) as a plain state dict:
/// `model.load_state_dict(safetensors.torch.load_file(path))` loads it in PyTorch.
/// Parameters and real buffers are `F32`, integer buffers `I64`.
///
/// # Errors
/// Duplicate names, a target [`Checkpoint::save`](crate::checkpoint::Checkpoint::save)
/// refuses (a symlink, device, directory, missing directory), or an I/O failure (any
/// existing file at `path` is then untouched).
pub fn save_state_dict(model: &dyn Module, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let tensors: Vec<(String, RawTensor)> = state_entries(model)
        .into_iter()
        .map(|(name, entry)| {
            let value = entry.value();
            let raw = if entry.is_integer() {
                RawTensor::i64(&value)
            } else {
                RawTensor::f32(&value)
            };
            (name, raw)
        })
        .collect();
    let bytes = serialize(&tensors, &BTreeMap::new()).map_err(|k| CheckpointError::new(path, k))?;
    write_atomic(path, &bytes)
}

/// A float or integer raw tensor as an `f32` [`Tensor`].
fn decode_any(name: &str, t: &RawTensor) -> Result<Tensor, CheckpointErrorKind> {
    fn le<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        bytes
            .chunks_exact(N)
            .map(|c| c.try_into().expect("chunks_exact gives N bytes"))
    }
    let values: Vec<f32> = match t.dtype {
        Dtype::F32 => return decode_f32(name, t),
        Dtype::F64 => le::<8>(&t.bytes)
            .map(|b| f64::from_le_bytes(b) as f32)
            .collect(),
        Dtype::F16 => le::<2>(&t.bytes)
            .map(|b| f16_to_f32(u16::from_le_bytes(b)))
            .collect(),
        Dtype::BF16 => le::<2>(&t.bytes)
            .map(|b| f32::from_bits((u16::from_le_bytes(b) as u32) << 16))
            .collect(),
        Dtype::I64 => le::<8>(&t.bytes)
            .map(|b| i64::from_le_bytes(b) as f32)
            .collect(),
        Dtype::I32 => le::<4>(&t.bytes)
            .map(|b| i32::from_le_bytes(b) as f32)
            .collect(),
        Dtype::I16 => le::<2>(&t.bytes)
            .map(|b| i16::from_le_bytes(b) as f32)
            .collect(),
        Dtype::I8 => t.bytes.iter().map(|&b| b as i8 as f32).collect(),
        Dtype::U8 => t.bytes.iter().map(|&b| b as f32).collect(),
        other => {
            return Err(CheckpointErrorKind::WrongDtype {
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    Tensor::from_vec(values, &t.shape)
        .map_err(|e| CheckpointErrorKind::NotSafetensors(format!("tensor {name:?}: {e}")))
}

/// IEEE half precision to single (exact: every f16 is an f32).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exponent = ((h >> 10) & 0x1f) as u32;
    let mantissa = (h & 0x3ff) as u32;
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value m·2^-24, normalised.
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_values_convert_exactly() {
        for (bits, value) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 5.960_464_5e-8), // the smallest subnormal, 2^-24
            (0x03ff, 6.097_555e-5),   // the largest subnormal
            (0x7bff, 65504.0),
            (0x0000, 0.0),
        ] {
            assert_eq!(f16_to_f32(bits), value, "{bits:#06x}");
        }
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
