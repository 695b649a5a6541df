//! Behaviour of the tape itself: long chains, reuse, parameters, no-grad evaluation.

use agdlab_autograd::{check_gradients, GradCheck, Param, Tape, Var};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

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
        assert!((v - expected).abs() < 1e-3 * expected, "got {v}, expected {expected}");
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
    let xs: Vec<Tensor> = (0..steps).map(|_| Tensor::normal(&[2, 3], 0.0, 1.0, &mut rng)).collect();
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
    let w = Var::param(&used);
    let loss = x.mul(&w).add(&w.sqr()).sum_all();
    let grads = loss.backward();
    // d/dw (x·w + w²) = x + 2w
    assert_eq!(grads.get(&used).unwrap().to_vec(), vec![12.0, 24.0]);
    assert!(grads.get(&unused).is_none());
    let named = [("used", &used), ("unused", &unused)];
    assert_eq!(grads.missing(named.iter().map(|(n, p)| (*n, *p))), vec!["unused".to_string()]);
}

#[test]
fn ops_on_a_parameter_before_it_meets_the_data_are_recorded() {
    let w = Param::new(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap());
    let tape = Tape::new();
    let x = tape.input(Tensor::ones(&[4, 3]));
    // x·Wᵀ through a transposed view of the parameter, plus an L2 penalty on W alone.
    let wt = Var::param(&w).t();
    let penalty = Var::param(&w).sqr().sum_all().mul_scalar(0.5);
    let loss = x.matmul(&wt).sum_all().add(&penalty);
    let grads = loss.backward();
    // d/dW [Σ x·Wᵀ] = 4 (four rows of ones) per entry; d/dW [½ΣW²] = W.
    let expected: Vec<f32> = (1..=6).map(|v| 4.0 + v as f32).collect();
    assert_eq!(grads.get(&w).unwrap().to_vec(), expected);
    // After backward the tape is spent: parameters read now are constants again.
    assert!(!Var::param(&w).requires_grad());
}

#[test]
fn nothing_is_recorded_without_a_gradient_to_compute() {
    let p = Param::new(Tensor::ones(&[2, 2]));
    // Evaluation: constants and parameters only, no tape anywhere.
    let x = Var::constant(Tensor::ones(&[3, 2]));
    let y = x.matmul(&Var::param(&p)).relu().sum_all();
    assert!(y.tape().is_none());
    assert!(!y.requires_grad());
    assert!(y.backward().is_empty());

    // A batch on a tape, but no parameter or leaf involved: still nothing recorded.
    let tape = Tape::new();
    assert!(Tape::current().is_some());
    let z = tape.input(Tensor::ones(&[3, 2])).exp().sum_all();
    assert_eq!(tape.len(), 0);
    assert!(!z.requires_grad());
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
#[should_panic(expected = "two different tapes")]
fn mixing_tapes_is_refused() {
    let (t1, t2) = (Tape::new(), Tape::new());
    let a = t1.leaf(Tensor::ones(&[2]));
    let b = t2.leaf(Tensor::ones(&[2]));
    let _ = a.add(&b);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
fn shape_mismatch_names_the_op_and_both_shapes() {
    let tape = Tape::new();
    let _ = tape.leaf(Tensor::ones(&[2, 3])).add(&tape.leaf(Tensor::ones(&[4])));
}

#[test]
fn no_grad_records_nothing_and_restores_the_current_tape() {
    let w = Param::new(Tensor::ones(&[2, 2]));
    let tape = Tape::new();
    let evaluated = Tape::no_grad(|| {
        assert!(Tape::current().is_none());
        Var::param(&w).matmul(&Var::constant(Tensor::ones(&[2, 1])))
    });
    assert!(!evaluated.requires_grad());
    assert_eq!(tape.len(), 0, "nothing was recorded inside no_grad");
    // Outside, parameters are recorded again.
    assert!(Var::param(&w).requires_grad());
    assert_eq!(tape.len(), 1);
}
