//! `Embedding`: PyTorch's initialisation and layout, lookups, and a row-sparse gradient
//! that touches only the rows used and never the padding row.

use agdlab_autograd::{Grad, Tape, Var};
use agdlab_nn::{Embedding, Module};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn initialisation_is_standard_normal_with_a_zero_padding_row() {
    let table = Embedding::new(2000, 50, Some(3), &mut StdRng::seed_from_u64(0));
    assert_eq!(table.weight.shape(), [2000, 50]);
    let w = table.weight.value().to_vec();
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var.sqrt() - 1.0).abs() < 0.01, "std {}", var.sqrt());
    assert!(
        w[3 * 50..4 * 50].iter().all(|&v| v == 0.0),
        "padding row is not zero"
    );
    assert!(w[2 * 50..3 * 50].iter().any(|&v| v != 0.0));
}

#[test]
fn names_and_sizes_are_pytorchs() {
    let table = Embedding::new(10, 4, None, &mut StdRng::seed_from_u64(0));
    let names: Vec<String> = table
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight"]);
    assert_eq!((table.num_embeddings(), table.embedding_dim()), (10, 4));
}

#[test]
fn forward_reads_rows_into_the_given_shape() {
    let table = Embedding::new(6, 3, None, &mut StdRng::seed_from_u64(1));
    let w = table.weight.value();
    let ids = [5, 0, 2, 2, 1, 4];
    let out = table.forward(&Tape::new(), &ids, &[2, 3]);
    assert_eq!(out.shape(), &[2, 3, 3]);
    for (k, &id) in ids.iter().enumerate() {
        let (row, col) = (k / 3, k % 3);
        for d in 0..3 {
            assert_eq!(out.value().get(&[row, col, d]), w.get(&[id, d]));
        }
    }
}

#[test]
fn the_gradient_is_row_sparse_adds_repeats_and_skips_padding() {
    let table = Embedding::new(8, 2, Some(0), &mut StdRng::seed_from_u64(2));
    let ids = [3, 0, 3, 5];
    let tape = Tape::new();
    let out = table.forward(&tape, &ids, &[4]);
    // A cotangent with a different weight per element.
    let cotangent = Tensor::from_vec((1..=8).map(|v| v as f32).collect(), &[4, 2]).unwrap();
    let grads = out.mul(&Var::constant(cotangent)).sum_all().backward();
    let grad = grads.get(&table.weight).expect("the table gets a gradient");
    let Grad::RowSparse(sparse) = grad else {
        panic!("expected a row-sparse gradient, got {grad:?}")
    };
    let mut rows = sparse.rows().to_vec();
    rows.sort();
    rows.dedup();
    assert_eq!(
        rows,
        [3, 5],
        "only the rows used, and not the padding row 0"
    );
    let dense = grad.to_dense();
    assert_eq!(dense.shape(), &[8, 2]);
    let expected_row3 = [1.0 + 5.0, 2.0 + 6.0]; // ids[0] and ids[2] are both 3
    assert_eq!(dense.narrow(0, 3, 1).to_vec(), expected_row3);
    assert_eq!(dense.narrow(0, 5, 1).to_vec(), [7.0, 8.0]);
    assert_eq!(dense.sum_all().item(), 1.0 + 5.0 + 2.0 + 6.0 + 7.0 + 8.0);
}

#[test]
fn evaluation_records_nothing() {
    let table = Embedding::new(4, 2, None, &mut StdRng::seed_from_u64(3));
    let tape = Tape::no_grad();
    let out = table.forward(&tape, &[1, 2], &[2]);
    assert!(!out.requires_grad());
    assert_eq!(tape.len(), 0);
}

#[test]
#[should_panic(expected = "out of range")]
fn an_id_past_the_table_panics() {
    let table = Embedding::new(4, 2, None, &mut StdRng::seed_from_u64(3));
    table.forward(&Tape::new(), &[4], &[1]);
}

#[test]
#[should_panic(expected = "do not fill shape")]
fn ids_that_do_not_fill_the_shape_panic() {
    let table = Embedding::new(4, 2, None, &mut StdRng::seed_from_u64(3));
    table.forward(&Tape::new(), &[1, 2, 3], &[2, 2]);
}
