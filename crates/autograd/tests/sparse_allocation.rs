//! An embedding's backward allocates in proportion to the rows it touched, not to the
//! table: measured with a counting global allocator (its own test binary, so no other
//! test's allocations are counted).

use agdlab_autograd::{Param, Tape};
use agdlab_tensor::alloc_count::{measure, CountingAllocator};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn embedding_backward_allocates_for_the_touched_rows_not_the_table() {
    const ROWS: usize = 1 << 20;
    const DIM: usize = 16;
    let table = Param::new(Tensor::zeros(&[ROWS, DIM]));
    let mut rng = StdRng::seed_from_u64(0);
    let ids: Vec<usize> = (0..1024).map(|_| rng.random_range(0..ROWS)).collect();

    let tape = Tape::new();
    let batch = tape.input(Tensor::ones(&[ids.len(), DIM]));
    let looked_up = table.on(&batch).embedding(&ids, None);
    let loss = looked_up.mul(&batch).sum_all();

    let (grads, stats) = measure(|| loss.backward());
    let allocated = stats.allocated;

    let touched_bytes = ids.len() * DIM * 4;
    let table_bytes = ROWS * DIM * 4;
    assert!(
        allocated < 8 * touched_bytes,
        "backward allocated {allocated} bytes for {touched_bytes} bytes of touched rows \
         (the table is {table_bytes} bytes)"
    );
    let grad = grads
        .get(&table)
        .unwrap()
        .as_row_sparse()
        .expect("row-sparse")
        .clone();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(grad.rows(), &unique[..]);
}
