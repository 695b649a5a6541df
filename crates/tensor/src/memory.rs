//! Keeping freed memory for reuse between training steps.
//!
//! A training step allocates the same large buffers every time: a language model's
//! logits and their gradient are `[batch·len, vocab]` (28 MB for PTB at batch 20 × 35),
//! a ResNet's activations several MB each. glibc's `malloc` serves blocks that large
//! with `mmap`, or trims them off the top of the heap when they are freed, so every step
//! gets fresh pages from the kernel: a page fault and a page clear for every 4 KiB
//! touched. In a PTB LSTM step that was 9–15% of the time (`perf`: `clear_page_erms`,
//! `exc_page_fault`).
//!
//! [`keep_freed_memory`] tells `malloc` to keep what it frees, as PyTorch's caching
//! allocators do on their devices: blocks up to [`MMAP_THRESHOLD`] come from the heap,
//! and freed memory is never trimmed, so the next step reuses pages that are already
//! mapped. The process's resident size then stays at its peak instead of falling back
//! between steps. The shared training loop calls it; other programs may.
//!
//! Only glibc has these settings (`mallopt`); elsewhere the call does nothing and says so.

/// Blocks below this size come from `malloc`'s heap rather than their own `mmap`: glibc's
/// largest allowed threshold (half its 64 MiB heap size on 64-bit targets).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Ask the C library's allocator to keep freed memory for reuse (see the module
/// documentation). Returns whether the settings took effect: `false` on targets other
/// than glibc, or if glibc refused them.
///
/// Process-wide and idempotent; call it before the first training step.
pub fn keep_freed_memory() -> bool {
    glibc::keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    /// `<malloc.h>`'s parameter numbers.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;

    extern "C" {
        /// glibc's `int mallopt(int param, int value)`: 1 on success, 0 on error.
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub(super) fn keep_freed_memory() -> bool {
        // SAFETY: `mallopt` only changes the allocator's tuning parameters (under its
        // own lock); it takes plain integers and touches no memory of ours.
        unsafe {
            // Never give the top of the heap back to the kernel ...
            let trim = mallopt(M_TRIM_THRESHOLD, c_int::MAX);
            // ... and serve blocks up to 32 MiB from the heap (this also turns off the
            // dynamic threshold, which would otherwise move with the sizes freed).
            let mmap = mallopt(M_MMAP_THRESHOLD, super::MMAP_THRESHOLD as c_int);
            trim == 1 && mmap == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub(super) fn keep_freed_memory() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::keep_freed_memory());
        // A second call is harmless.
        assert!(super::keep_freed_memory());
        // Allocation still works, below and above the threshold.
        let small = vec![1.0f32; 1 << 20];
        let large = vec![2.0f32; (super::MMAP_THRESHOLD / 4) + 1];
        assert_eq!(small[small.len() - 1] + large[large.len() - 1], 3.0);
    }
}
