//! An embedding's backward allocates in proportion to the rows it touched, not to the
//! table: measured with a counting global allocator (its own test binary, so no other
//! test's allocations are counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use agdlab_autograd::{Param, Tape};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Counting;
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is only
// a statistic and never affects what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    let before = ALLOCATED.load(Ordering::Relaxed);
    let grads = loss.backward();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;

    let touched_bytes = ids.len() * DIM * 4;
    let table_bytes = ROWS * DIM * 4;
    assert!(
        allocated < 8 * touched_bytes,
        "backward allocated {allocated} bytes for {touched_bytes} bytes of touched rows \
         (the table is {table_bytes} bytes)"
    );
    let grad = grads.get(&table).unwrap().as_row_sparse().expect("row-sparse").clone();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(grad.rows(), &unique[..]);
}
