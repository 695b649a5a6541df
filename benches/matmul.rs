//! `Tensor::matmul` against the raw `matrixmultiply::sgemm` call it wraps.
//!
//! Throughput is set to `2·n³` elements per iteration, so criterion's "Gelem/s" reads
//! as GFLOP/s. Runs with `RAYON_NUM_THREADS` rayon threads (default 1), so the
//! comparison with the single-threaded raw call measures wrapper overhead only.
//!
//! `cargo bench --bench matmul -- --warm-up-time 1 --measurement-time 3`

#[path = "common/pool.rs"]
mod pool;

use agdlab_tensor::{matmul_into, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Size rayon's global pool: `RAYON_NUM_THREADS` threads, 1 when unset, the bench's
/// thread among them (see `common/pool.rs`). With one thread the ops take the serial
/// path.
fn single_threaded_by_default() {
    pool::use_this_thread_in_the_pool(Some(1));
}

/// `c = a·b` for row-major `[m, k]`, `[k, n]` and `[m, n]` buffers, or with `a` read
/// transposed (a row-major `[k, m]` buffer).
fn raw_sgemm([m, k, n]: [usize; 3], a: &[f32], a_transposed: bool, b: &[f32], c: &mut [f32]) {
    let (rsa, csa) = if a_transposed {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the buffers hold m·k, k·n and m·n elements and the strides address
    // exactly those; c is exclusively borrowed and distinct from a and b.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn square(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(0);
    let mut group = c.benchmark_group("matmul_square");
    for n in [128, 256, 512, 1024] {
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.sample_size(if n >= 1024 {
            10
        } else if n >= 512 {
            30
        } else {
            100
        });
        let a = Tensor::uniform(&[n, n], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[n, n], -1.0, 1.0, &mut rng);
        let mut out = Tensor::zeros(&[n, n]);
        let mut raw = vec![0.0f32; n * n];
        let (a_data, b_data) = (a.to_vec(), b.to_vec());

        group.bench_function(BenchmarkId::new("raw_sgemm", n), |bench| {
            bench.iter(|| raw_sgemm([n, n, n], &a_data, false, &b_data, &mut raw))
        });
        group.bench_function(BenchmarkId::new("Tensor::matmul", n), |bench| {
            bench.iter(|| a.matmul(&b))
        });
        group.bench_function(BenchmarkId::new("matmul_into", n), |bench| {
            bench.iter(|| matmul_into(&a, &b, &mut out, 1.0, 0.0))
        });
    }
    group.finish();
}

/// `aᵀ·b` with `a` a transposed view: no copy, the strides go to sgemm.
fn transposed(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(1);
    let mut group = c.benchmark_group("matmul_transposed_a");
    let n = 512;
    group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
    group.sample_size(30);
    let a = Tensor::uniform(&[n, n], -1.0, 1.0, &mut rng);
    let b = Tensor::uniform(&[n, n], -1.0, 1.0, &mut rng);
    let at = a.t();
    let mut raw = vec![0.0f32; n * n];
    let (a_data, b_data) = (a.to_vec(), b.to_vec());
    group.bench_function(BenchmarkId::new("raw_sgemm", n), |bench| {
        bench.iter(|| raw_sgemm([n, n, n], &a_data, true, &b_data, &mut raw))
    });
    group.bench_function(BenchmarkId::new("Tensor::matmul", n), |bench| {
        bench.iter(|| at.matmul(&b))
    });
    group.finish();
}

/// Products with few rows (`crate::skinny_gemm`'s path in `Tensor::matmul`) against
/// `matrixmultiply`: the LSTM's recurrent products at batch 20 (`h·W_hhᵀ` with `W_hhᵀ`
/// stored row-major, `dG·W_hh`), one row, and the largest shape the path takes.
fn few_rows(c: &mut Criterion) {
    single_threaded_by_default();
    let mut rng = StdRng::seed_from_u64(2);
    let mut group = c.benchmark_group("matmul_few_rows");
    group.sample_size(30);
    for [m, k, n] in [
        [20, 200, 800],
        [20, 800, 200],
        [1, 200, 800],
        [32, 1024, 1024],
    ] {
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        let a = Tensor::uniform(&[m, k], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[k, n], -1.0, 1.0, &mut rng);
        let (a_data, b_data) = (a.to_vec(), b.to_vec());
        let mut raw = vec![0.0f32; m * n];
        let shape = format!("{m}x{k}x{n}");
        group.bench_function(BenchmarkId::new("raw_sgemm", &shape), |bench| {
            bench.iter(|| raw_sgemm([m, k, n], &a_data, false, &b_data, &mut raw))
        });
        group.bench_function(BenchmarkId::new("Tensor::matmul", &shape), |bench| {
            bench.iter(|| a.matmul(&b))
        });
    }
    group.finish();
}

criterion_group!(benches, square, transposed, few_rows);
criterion_main!(benches);
