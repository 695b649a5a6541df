//! Behaviour of the tape itself: explicit tapes, checked backward closures, long chains,
//! reuse, parameters, row-sparse gradients, no-grad evaluation.

use agdlab_autograd::{check_gradients, GradCheck, Gradients, Param, Tape, Var};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

/// The message of a panic raised by `f`.
fn panic_message(f: impl FnOnce()) -> String {
    let err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// --- Explicit tapes ----------------------------------------------------------------

/// The first silent failure of the thread-local design: a helper that made and dropped
/// a tape of its own in the middle of a step detached every parameter used after it.
#[test]
fn a_second_tape_in_the_middle_of_a_step_detaches_nothing() {
    let w = Param::new(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]).unwrap());
    let tape = Tape::new();
    let x = tape.input(Tensor::ones(&[2, 3]));
    // A helper that runs its own little computation on a tape of its own.
    let helper = || {
        let scratch = Tape::new();
        let y = scratch.leaf(Tensor::ones(&[2])).sqr().sum_all();
        y.backward().len()
    };
    let _ = helper();
    let loss = x.matmul(&w.on(&x).t()).sum_all();
    let _ = helper();
    let grads = loss.backward();
    // d/dW Σ x·Wᵀ = column sums of x = [2, 2, 2].
    assert_eq!(
        grads.get(&w).expect("w must have a gradient").to_vec(),
        vec![2.0, 2.0, 2.0]
    );
}

/// Training steps run as rayon tasks: a worker that waits inside a parallel kernel may
/// run another step meanwhile. Every step must still get every gradient, exactly.
#[test]
fn training_steps_run_as_rayon_tasks_get_every_gradient() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let step = |seed: u64| -> (Vec<f32>, Vec<f32>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let w1 = Param::new(Tensor::normal(&[256, 256], 0.0, 0.05, &mut rng));
        let w2 = Param::new(Tensor::normal(&[8, 256], 0.0, 0.05, &mut rng));
        let tape = Tape::new();
        let x = tape.input(Tensor::normal(&[256, 256], 0.0, 1.0, &mut rng));
        // Large enough that the matmuls split across the pool's threads.
        let h = x.linear(&w1.on(&x), None).tanh();
        let loss = h.linear(&w2.on(&h), None).sqr().mean_all();
        let grads = loss.backward();
        let g1 = grads.get(&w1).expect("w1 detached").to_vec();
        let g2 = grads.get(&w2).expect("w2 detached").to_vec();
        (g1, g2)
    };
    let alone: Vec<_> = (0..6).map(step).collect();
    let together: Vec<_> = pool.install(|| (0..6u64).into_par_iter().map(step).collect());
    assert_eq!(alone, together);
}

#[test]
fn mixing_tapes_in_one_op_names_the_op() {
    let (t1, t2) = (Tape::new(), Tape::new());
    let a = t1.leaf(Tensor::ones(&[2]));
    let b = t2.leaf(Tensor::ones(&[2]));
    let message = panic_message(move || drop(a.mul(&b)));
    assert!(
        message.starts_with("mul: inputs come from two different tapes"),
        "{message}"
    );
}

/// `wrt` with a value of another tape used to return whatever leaf had the same node
/// number on the tape that made the gradients.
#[test]
fn wrt_with_a_value_of_another_tape_is_an_error() {
    let t1 = Tape::new();
    let x1 = t1.leaf(Tensor::from_vec(vec![3.0], &[1]).unwrap());
    let grads = x1.sqr().sum_all().backward();
    assert_eq!(grads.wrt(&x1).unwrap().to_vec(), vec![6.0]);

    let t2 = Tape::new();
    let x2 = t2.leaf(Tensor::from_vec(vec![5.0], &[1]).unwrap()); // node 0 too
    let message = panic_message(move || {
        let _ = grads.wrt(&x2);
    });
    assert!(
        message.contains("Gradients::wrt") && message.contains("tape #"),
        "{message}"
    );
}

#[test]
fn no_grad_records_nothing() {
    let w = Param::new(Tensor::ones(&[2, 2]));
    let training = Tape::new();
    let eval = Tape::no_grad();
    assert!(!eval.is_recording());
    let x = eval.input(Tensor::ones(&[3, 2]));
    let y = x.matmul(&w.on(&x)).relu().sum_all();
    assert!(!y.requires_grad());
    assert!(y.tape().is_none(), "values on a no-grad tape are constants");
    assert!(eval.is_empty() && training.is_empty());
    assert!(!eval.param(&w).requires_grad() && !eval.leaf(Tensor::ones(&[1])).requires_grad());
}

#[test]
fn backward_of_an_unrecorded_value_says_why() {
    let w = Param::new(Tensor::ones(&[2, 2]));
    let x = Var::constant(Tensor::ones(&[3, 2])); // forgot tape.input(...)
    let loss = x.matmul(&w.on(&x)).sum_all();
    let message = panic_message(move || drop(loss.backward()));
    assert!(message.contains("tape.input"), "{message}");
}

// --- Checked backward closures ---------------------------------------------------------

/// The second silent failure: a backward that returned too few gradients had them
/// zipped away, and the input it forgot got no gradient.
#[test]
fn a_backward_that_forgets_an_input_names_the_op() {
    let tape = Tape::new();
    let a = tape.leaf(Tensor::ones(&[2]));
    let b = tape.leaf(Tensor::ones(&[2]));
    let out = a.value().mul(b.value());
    let y = Var::record("forgetful_mul", out, &[&a, &b], move |g, grads| {
        grads.add(0, || g)
    })
    .sum_all();
    let message = panic_message(move || drop(y.backward()));
    assert!(
        message.starts_with("forgetful_mul backward: gave no gradient for input 1"),
        "{message}"
    );
}

#[test]
fn a_backward_gradient_of_the_wrong_shape_names_the_op() {
    let tape = Tape::new();
    let a = tape.leaf(Tensor::ones(&[2, 3]));
    let y = Var::record("bad_shape", a.value().clone(), &[&a], |_, grads| {
        grads.add(0, || Tensor::ones(&[3, 2]))
    })
    .sum_all();
    let message = panic_message(move || drop(y.backward()));
    assert!(
        message.contains("bad_shape backward") && message.contains("[3, 2]"),
        "{message}"
    );
}

#[test]
fn inputs_that_need_no_gradient_are_not_computed() {
    let tape = Tape::new();
    let data = tape.input(Tensor::ones(&[2]));
    let w = tape.leaf(Tensor::ones(&[2]));
    let y = Var::record(
        "probe",
        data.value().mul(w.value()),
        &[&data, &w],
        |g, grads| {
            assert!(!grads.needs(0) && grads.needs(1));
            grads.add(0, || panic!("the data's gradient must not be computed"));
            grads.add(1, || g);
        },
    );
    assert_eq!(
        y.sum_all().backward().wrt(&w).unwrap().to_vec(),
        vec![1.0, 1.0]
    );
}

// --- Long chains, reuse, parameters ----------------------------------------------------

#[test]
fn ten_thousand_op_chain_runs_backward_without_recursion() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![0.5, -0.25], &[2]).unwrap());
    // y = x·(1.0001)^10000 built from 10,000 mul_scalar nodes.
    let mut y = x.clone();
    for _ in 0..10_000 {
        y = y.mul_scalar(1.0001);
    }
    assert!(tape.len() > 10_000);
    let grads = y.sum_all().backward();
    let expected = 1.0001f64.powi(10_000) as f32;
    let g = grads.wrt(&x).unwrap().to_vec();
    for v in g {
        assert!(
            (v - expected).abs() < 1e-3 * expected,
            "got {v}, expected {expected}"
        );
    }
}

/// h_t = tanh(W·h_{t-1} + U·x_t + b), unrolled for `steps`.
fn rnn(w: &Var, u: &Var, b: &Var, h0: &Var, xs: &[Var]) -> Var {
    let mut h = h0.clone();
    for x in xs {
        h = h.matmul(&w.t()).add(&x.matmul(&u.t())).add(b).tanh();
    }
    h
}

#[test]
fn thirty_five_step_recurrence_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(1);
    let steps = 35;
    let w = Tensor::normal(&[4, 4], 0.0, 0.4, &mut rng);
    let u = Tensor::normal(&[4, 3], 0.0, 0.4, &mut rng);
    let b = Tensor::normal(&[4], 0.0, 0.1, &mut rng);
    let h0 = Tensor::normal(&[2, 4], 0.0, 0.5, &mut rng);
    let xs: Vec<Tensor> = (0..steps)
        .map(|_| Tensor::normal(&[2, 3], 0.0, 1.0, &mut rng))
        .collect();
    check_gradients(
        |v| {
            let xs: Vec<Var> = xs.iter().map(|x| Var::constant(x.clone())).collect();
            rnn(&v[0], &v[1], &v[2], &v[3], &xs)
        },
        &[w, u, b, h0],
        &GradCheck::default(),
    )
    .unwrap();
}

#[test]
fn a_value_used_twice_accumulates_both_gradients() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![3.0], &[1]).unwrap());
    // f = x·x + x  =>  f' = 2x + 1 = 7
    let f = x.mul(&x).add(&x).sum_all();
    let grads = f.backward();
    assert_eq!(grads.wrt(&x).unwrap().to_vec(), vec![7.0]);
}

#[test]
fn parameters_get_gradients_by_id_and_missing_ones_are_reported() {
    let used = Param::new(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let unused = Param::new(Tensor::zeros(&[3]));
    let tape = Tape::new();
    let x = tape.input(Tensor::from_vec(vec![10.0, 20.0], &[2]).unwrap());
    // Use the parameter twice: it must be one leaf with the sum of both gradients.
    let w = used.on(&x);
    let loss = x.mul(&w).add(&used.on(&x).sqr()).sum_all();
    let grads = loss.backward();
    // d/dw (x·w + w²) = x + 2w
    assert_eq!(grads.get(&used).unwrap().to_vec(), vec![12.0, 24.0]);
    assert!(grads.get(&unused).is_none());
    let named = [("used", &used), ("unused", &unused)];
    assert_eq!(
        grads.missing(named.iter().map(|(n, p)| (*n, *p))),
        vec!["unused".to_string()]
    );
}

#[test]
fn ops_on_a_parameter_before_it_meets_the_data_are_recorded() {
    let w = Param::new(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap());
    let tape = Tape::new();
    let x = tape.input(Tensor::ones(&[4, 3]));
    // x·Wᵀ through a transposed view of the parameter, plus an L2 penalty on W alone,
    // put on the step's tape directly.
    let wt = w.on(&x).t();
    let penalty = tape.param(&w).sqr().sum_all().mul_scalar(0.5);
    let loss = x.matmul(&wt).sum_all().add(&penalty);
    let grads = loss.backward();
    // d/dW [Σ x·Wᵀ] = 4 (four rows of ones) per entry; d/dW [½ΣW²] = W.
    let expected: Vec<f32> = (1..=6).map(|v| 4.0 + v as f32).collect();
    assert_eq!(grads.get(&w).unwrap().to_vec(), expected);
}

#[test]
fn gradient_of_a_detached_value_stops() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![2.0], &[1]).unwrap());
    let y = x.mul(&x.detach()).sum_all(); // d/dx = x (the detached factor is constant)
    assert_eq!(y.backward().wrt(&x).unwrap().to_vec(), vec![2.0]);
}

#[test]
#[should_panic(expected = "already ran backward")]
fn a_tape_runs_backward_once() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::ones(&[1]));
    let y = x.exp().sum_all();
    let _ = y.backward();
    let _ = y.backward();
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
fn shape_mismatch_names_the_op_and_both_shapes() {
    let tape = Tape::new();
    let _ = tape
        .leaf(Tensor::ones(&[2, 3]))
        .add(&tape.leaf(Tensor::ones(&[4])));
}

// --- Accumulating and row-sparse gradients ------------------------------------------------

#[test]
fn an_embedding_gradient_is_row_sparse_with_sorted_unique_rows() {
    let table = Param::new(Tensor::arange(12).reshape(&[6, 2]));
    let tape = Tape::new();
    let dummy = tape.input(Tensor::ones(&[1]));
    let rows = table.on(&dummy).embedding(&[4, 1, 4, 2], None);
    let weights = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[4, 2]).unwrap();
    let grads = rows.mul(&Var::constant(weights)).sum_all().backward();
    let grad = grads.get(&table).unwrap();
    let sparse = grad
        .as_row_sparse()
        .expect("an embedding's gradient stays row-sparse");
    assert_eq!(sparse.rows(), &[1, 2, 4]);
    // Row 4 was read twice: its gradient is the sum of both uses.
    assert_eq!(sparse.values().to_vec(), vec![3.0, 4.0, 7.0, 8.0, 6.0, 8.0]);
    let dense = grad.to_dense().to_vec();
    assert_eq!(
        dense,
        vec![0.0, 0.0, 3.0, 4.0, 7.0, 8.0, 0.0, 0.0, 6.0, 8.0, 0.0, 0.0]
    );
}

#[test]
fn a_padding_row_is_read_but_gets_no_gradient() {
    let table = Param::new(Tensor::ones(&[4, 3]));
    let tape = Tape::new();
    let dummy = tape.input(Tensor::ones(&[1]));
    let out = table.on(&dummy).embedding(&[0, 2, 0, 3], Some(0));
    assert_eq!(out.value().to_vec(), vec![1.0; 12]);
    let grads = out.sum_all().backward();
    assert_eq!(
        grads.get(&table).unwrap().as_row_sparse().unwrap().rows(),
        &[2, 3]
    );
}

#[test]
fn sparse_and_dense_uses_of_one_table_add_up_densely() {
    let table = Param::new(Tensor::ones(&[3, 2]));
    let tape = Tape::new();
    let t = tape.param(&table);
    let loss = t.embedding(&[1], None).sum_all().add(&t.sum_all());
    let grad = loss.backward().get(&table).unwrap().clone();
    assert!(!grad.is_row_sparse());
    assert_eq!(grad.to_vec(), vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0]);
}

#[test]
fn gradients_built_by_hand_check_shapes() {
    let p = Param::new(Tensor::zeros(&[4, 2]));
    let mut grads = Gradients::new();
    grads.insert_rows(&p, vec![3, 0, 3], Tensor::ones(&[3, 2]));
    let sparse = grads.get(&p).unwrap().as_row_sparse().unwrap().clone();
    assert_eq!(sparse.rows(), &[0, 3]);
    assert_eq!(sparse.values().to_vec(), vec![1.0, 1.0, 2.0, 2.0]);
    let message = panic_message(move || grads.insert(&p, Tensor::ones(&[2, 4])));
    assert!(
        message.contains("[2, 4]") && message.contains("[4, 2]"),
        "{message}"
    );
}
