//! `memory::keep_freed_memory`: after it, a training step's large buffers reuse pages
//! that are already mapped instead of faulting in fresh ones every step.
//!
//! One test in its own binary: the setting is process-wide and cannot be undone, and
//! page faults are counted for the whole process.

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    after_name
        .split(' ')
        .nth(7)
        .expect("minflt field")
        .parse()
        .expect("minflt is a number")
}

/// A "step": three 20 MiB buffers live at once (logits, their softmax, the gradient),
/// each written across every page, then all freed. Returns the page faults it took.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn step_faults() -> u64 {
    const BYTES: usize = 20 << 20;
    let before = minor_faults();
    let buffers: Vec<Vec<u8>> = (0..3)
        .map(|k| {
            let mut b = Vec::<u8>::with_capacity(BYTES);
            b.resize(BYTES, k as u8 + 1);
            b
        })
        .collect();
    let sum: u64 = buffers.iter().map(|b| b[BYTES / 2] as u64).sum();
    assert_eq!(sum, 6);
    drop(buffers);
    minor_faults() - before
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn freed_step_buffers_are_reused_without_page_faults() {
    let pages = 3 * (20 << 20) / 4096;
    let default: Vec<u64> = (0..3).map(|_| step_faults()).collect();
    assert!(agdlab_tensor::memory::keep_freed_memory());
    step_faults(); // the heap grows to the step's size once
    let kept: Vec<u64> = (0..3).map(|_| step_faults()).collect();
    eprintln!("page faults per step of {pages} pages: glibc's defaults {default:?}, kept {kept:?}");
    for faults in kept {
        assert!(
            faults < pages as u64 / 20,
            "{faults} page faults in a step of {pages} pages after keep_freed_memory"
        );
    }
}
