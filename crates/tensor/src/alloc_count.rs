//! Counting heap allocations, for the tests and benchmarks that promise "no copy" or "in
//! proportion to the rows touched" and must be able to fail.
//!
//! Install [`CountingAllocator`] as a test binary's global allocator, then measure a piece
//! of code with [`measure`]:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: agdlab_tensor::alloc_count::CountingAllocator = agdlab_tensor::alloc_count::CountingAllocator;
//!
//! let (grads, stats) = agdlab_tensor::alloc_count::measure(|| loss.backward());
//! assert!(stats.allocated < 8 * touched_bytes);
//! ```
//!
//! The counters are process-wide: a binary that counts should hold one test (or run its
//! measurements where nothing else allocates).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting every allocation.
pub struct CountingAllocator;

fn note_allocation(size: usize) {
    ALLOCATED.fetch_add(size, Ordering::Relaxed);
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counters are only statistics and never affect what is
// returned or freed.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        note_allocation(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// What a piece of code allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Bytes allocated in all (a `realloc` counts its new size).
    pub allocated: usize,
    /// Number of allocations.
    pub allocations: usize,
    /// The most bytes live at once, above what was live at the start.
    pub peak: usize,
}

/// Run `f` and return what it allocated (meaningful only with [`CountingAllocator`]
/// installed as the global allocator).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    let (allocated, allocations) = (
        ALLOCATED.load(Ordering::SeqCst),
        ALLOCATIONS.load(Ordering::SeqCst),
    );
    let live = LIVE.load(Ordering::SeqCst);
    PEAK.store(live, Ordering::SeqCst);
    let result = f();
    let stats = AllocStats {
        allocated: ALLOCATED.load(Ordering::SeqCst) - allocated,
        allocations: ALLOCATIONS.load(Ordering::SeqCst) - allocations,
        peak: PEAK.load(Ordering::SeqCst).saturating_sub(live),
    };
    (result, stats)
}
