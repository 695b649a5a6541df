//! The cost of a permute-copy relative to a contiguous copy, measured interleaved.
//!
//! `benches/strided.rs` times each line with criterion, one line after the other, so on
//! a shared machine a change of load between two lines moves their ratio (repeated runs
//! of its small shapes moved by ±0.3). This bench measures the ratio itself: every round
//! times a contiguous copy (`to_vec()` of a contiguous tensor: an allocation and a
//! `memcpy`), an NCHW -> NHWC `contiguous()` and an NHWC -> NCHW `contiguous()` of the
//! same number of elements, back to back, in a rotating order, and takes the ratio of
//! each permute to the copy of its own round. It prints the median and the quartiles of
//! those per-round ratios, per shape, and then the median time of each line
//! (`benches/pytorch_permute.py` reads those to compare with PyTorch's permute-copies).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench permute_ratio
//! RAYON_NUM_THREADS=2 cargo bench --bench permute_ratio -- --rounds 400
//! ```

#[path = "common/pool.rs"]
mod pool;

use std::hint::black_box;
use std::time::Instant;

use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// NCHW activation shapes: ResNet stage outputs at batch 128, and one large map (the
/// shapes of `benches/strided.rs`).
const SHAPES: [[usize; 4]; 4] = [
    [128, 16, 32, 32],
    [128, 32, 16, 16],
    [128, 64, 8, 8],
    [128, 16, 64, 64],
];

/// Calls timed together in one measurement, so that one measurement lasts about a
/// millisecond at the small shapes and the clock's resolution does not matter.
const CALLS_PER_MEASUREMENT: usize = 8;

/// Seconds per call of `f`, over [`CALLS_PER_MEASUREMENT`] calls.
fn seconds_per_call<T>(f: &impl Fn() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS_PER_MEASUREMENT {
        black_box(f());
    }
    start.elapsed().as_secs_f64() / CALLS_PER_MEASUREMENT as f64
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; the only option of our own is `--rounds N`.
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|n| {
            n.parse::<usize>()
                .expect("--rounds takes a positive integer")
        })
        .unwrap_or(200)
        .max(1);
    let threads = pool::use_this_thread_in_the_pool(Some(1));

    println!(
        "permute-copy / contiguous copy, {threads} thread(s), {rounds} interleaved rounds per shape"
    );
    println!("| shape | NCHW->NHWC median [quartiles] | NHWC->NCHW median [quartiles] |");
    println!("|---|---|---|");
    let mut rng = StdRng::seed_from_u64(0);
    let mut median_times = Vec::new();
    for [n, c, h, w] in SHAPES {
        let nchw = Tensor::uniform(&[n, c, h, w], -1.0, 1.0, &mut rng);
        let nhwc = Tensor::uniform(&[n, h, w, c], -1.0, 1.0, &mut rng);
        let copy = || nchw.to_vec();
        let to_nhwc = || nchw.permute(&[0, 2, 3, 1]).contiguous();
        let to_nchw = || nhwc.permute(&[0, 3, 1, 2]).contiguous();
        assert_eq!(
            to_nhwc().to_vec(),
            nchw.permute(&[0, 2, 3, 1]).to_vec(),
            "permute-copy is a copy"
        );

        // Warm up: the allocator's free lists, the caches, the pool's threads.
        for _ in 0..20 {
            black_box((copy(), to_nhwc(), to_nchw()));
        }
        let (mut to_nhwc_ratios, mut to_nchw_ratios) =
            (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        let mut line_times = [(); 3].map(|_| Vec::with_capacity(rounds));
        for round in 0..rounds {
            // Rotate the order, so that no line always follows the same one.
            let mut times = [0.0; 3];
            for k in 0..3 {
                let line = (round + k) % 3;
                times[line] = match line {
                    0 => seconds_per_call(&copy),
                    1 => seconds_per_call(&to_nhwc),
                    _ => seconds_per_call(&to_nchw),
                };
            }
            to_nhwc_ratios.push(times[1] / times[0]);
            to_nchw_ratios.push(times[2] / times[0]);
            for (all, time) in line_times.iter_mut().zip(times) {
                all.push(time);
            }
        }
        median_times.push((
            [n, c, h, w],
            line_times.map(|mut t| {
                t.sort_by(f64::total_cmp);
                quantile(&t, 0.5)
            }),
        ));
        let summary = |ratios: &mut Vec<f64>| {
            ratios.sort_by(f64::total_cmp);
            format!(
                "{:.2} [{:.2}, {:.2}]",
                quantile(ratios, 0.5),
                quantile(ratios, 0.25),
                quantile(ratios, 0.75)
            )
        };
        println!(
            "| [{n}, {c}, {h}, {w}] | {} | {} |",
            summary(&mut to_nhwc_ratios),
            summary(&mut to_nchw_ratios)
        );
    }
    println!();
    println!("| shape | copy µs | NCHW->NHWC µs | NHWC->NCHW µs |  (medians over rounds)");
    println!("|---|---|---|---|");
    for ([n, c, h, w], [copy, to_nhwc, to_nchw]) in median_times {
        println!(
            "| [{n}, {c}, {h}, {w}] | {:.1} | {:.1} | {:.1} |",
            copy * 1e6,
            to_nhwc * 1e6,
            to_nchw * 1e6
        );
    }
}
