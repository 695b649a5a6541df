//! Arbitrary bytes into the safetensors reader behind `Checkpoint::load` and
//! `load_state_dict`: every input gives a checkpoint or an error, never a panic, an
//! overflow or a huge allocation. Whatever loads must save, and load back to the same
//! tensors and metadata, and save again to the same bytes (the writer is
//! deterministic).
//!
//! `Checkpoint::from_bytes` runs the whole validation of the header and data (any
//! dtype) before it refuses tensors that are not `F32`, so the checks that
//! `load_state_dict` relies on are all reached.
//!
//! ```text
//! cargo fuzz run checkpoint -s none -- -runs=1000000
//! ```

#![no_main]

use agdlab::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(checkpoint) = Checkpoint::from_bytes(bytes) else {
        return;
    };
    // Names are unique (they were keys of one JSON object) and none is `__metadata__`.
    let saved = checkpoint
        .to_bytes()
        .expect("a checkpoint that loaded must save");
    let again = Checkpoint::from_bytes(&saved).expect("a saved checkpoint must load");
    assert_eq!(again.metadata, checkpoint.metadata);
    assert_eq!(again.tensors.len(), checkpoint.tensors.len());
    let mut expected: Vec<_> = checkpoint.tensors.iter().collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    for ((name, tensor), (expected_name, expected_tensor)) in again.tensors.iter().zip(expected) {
        assert_eq!(name, expected_name);
        assert_eq!(tensor.shape(), expected_tensor.shape(), "{name}");
        let bits =
            |t: &agdlab::tensor::Tensor| t.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(tensor), bits(expected_tensor), "{name}");
    }
    assert_eq!(
        again.to_bytes().expect("it saved once"),
        saved,
        "the writer is not deterministic"
    );
});
