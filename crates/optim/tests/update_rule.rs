//! The contract of [`PerParameter`] towards an [`UpdateRule`] written outside the crate:
//! step numbering, the `init` hook, skipped parameters, the NaN check, state by name,
//! hyper-parameters by name and the diagnostics report.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use agdlab_autograd::{Gradients, Param};
use agdlab_optim::{
    check_hyperparam, run_fused, unknown_hyperparam, Chunk, OptimError, Optimizer, PerParameter,
    StepStats, UpdateRule, CHECK_BLOCK,
};
use agdlab_tensor::Tensor;

/// θ ← θ - γ·g; buffer `last_step` holds the step number the rule was given, buffer
/// `start` the parameter's value at its first step (set by `init`). Measures the
/// fraction of positive gradients.
#[derive(Clone)]
struct Probe {
    lr: f32,
    inits: Arc<AtomicUsize>,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            lr: 0.5,
            inits: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[derive(Default)]
struct Positive(usize);

impl StepStats for Positive {
    fn merge(self, other: Positive) -> Positive {
        Positive(self.0 + other.0)
    }
    fn report(&self, numel: usize) -> Vec<(&'static str, f64)> {
        vec![("positive_fraction", self.0 as f64 / numel as f64)]
    }
}

impl UpdateRule for Probe {
    type Stats = Positive;

    fn name(&self) -> &'static str {
        "Probe"
    }
    fn hyperparams(&self) -> Vec<(&'static str, f64)> {
        vec![("lr", self.lr as f64)]
    }
    fn set_hyperparam(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        match name {
            "lr" => {
                self.lr =
                    check_hyperparam("Probe", name, value, value >= 0.0, "a number >= 0")? as f32
            }
            _ => return Err(unknown_hyperparam(self, name)),
        }
        Ok(())
    }
    fn buffers(&self) -> &'static [&'static str] {
        &["last_step", "start"]
    }
    fn init(&self, theta: &[f32], bufs: &mut [Vec<f32>]) {
        assert!(
            bufs.iter().all(|b| b.iter().all(|&x| x == 0.0)),
            "buffers start at zero"
        );
        self.inits.fetch_add(1, Ordering::SeqCst);
        bufs[1].copy_from_slice(theta);
    }
    fn update(&self, step: u64, chunk: Chunk<'_>) -> Positive {
        let lr = self.lr;
        run_fused(chunk, &|ch: Chunk<'_>| {
            let Chunk {
                theta,
                grad,
                bufs: [last, ..],
            } = ch;
            let mut positive = 0;
            for (range, grad) in grad.finite_blocks() {
                for ((t, &g), l) in theta[range.clone()]
                    .iter_mut()
                    .zip(grad)
                    .zip(&mut last[range])
                {
                    *t -= lr * g;
                    *l = step as f32;
                    positive += (g > 0.0) as usize;
                }
            }
            Positive(positive)
        })
    }
}

fn tensor(v: Vec<f32>) -> Tensor {
    let n = v.len();
    Tensor::from_vec(v, &[n]).unwrap()
}

/// `a` (3 elements) and `big` (above the parallel threshold).
fn setup() -> (Param, Param, PerParameter<Probe>) {
    let a = Param::new(tensor(vec![1.0, 2.0, 3.0]));
    let big = Param::new(tensor(vec![1.0; 100_000]));
    let opt = PerParameter::with_rule(
        vec![
            ("a".to_string(), a.clone()),
            ("big".to_string(), big.clone()),
        ],
        Probe::new(),
    )
    .unwrap();
    (a, big, opt)
}

#[test]
fn steps_are_one_based_per_parameter_and_init_runs_once() {
    let (a, big, mut opt) = setup();
    let mut only_a = Gradients::new();
    only_a.insert(&a, tensor(vec![1.0, -1.0, 2.0]));
    let mut both = only_a.clone();
    both.insert(&big, tensor(vec![-2.0; 100_000]));

    opt.step(&only_a).unwrap();
    assert_eq!(
        opt.rule().inits.load(Ordering::SeqCst),
        1,
        "init only for the stepped parameter"
    );
    assert_eq!(a.value().to_vec(), vec![0.5, 2.5, 2.0]);
    assert_eq!(big.value().to_vec()[0], 1.0, "no gradient, no update");
    let s = opt.state();
    assert_eq!(
        (s.scalar("a.step"), s.scalar("big.step")),
        (Some(1.0), Some(0.0))
    );
    assert!(
        s.tensor("big.start").is_none(),
        "no state before a parameter's first step"
    );

    opt.step(&both).unwrap();
    let s = opt.state();
    assert_eq!(
        (s.scalar("a.step"), s.scalar("big.step")),
        (Some(2.0), Some(1.0))
    );
    assert_eq!(s.tensor("a.last_step").unwrap().to_vec(), vec![2.0; 3]);
    assert_eq!(
        s.tensor("big.last_step").unwrap().to_vec(),
        vec![1.0; 100_000]
    );
    assert_eq!(
        s.tensor("a.start").unwrap().to_vec(),
        vec![1.0, 2.0, 3.0],
        "init saw θ_0"
    );
    assert_eq!(opt.rule().inits.load(Ordering::SeqCst), 2);

    // The diagnostics: a has 2 of 3 positive gradients, big none.
    let r = opt.diagnostics();
    assert_eq!(
        r.per_param("positive_fraction"),
        vec![("a", 2.0 / 3.0), ("big", 0.0)]
    );
    assert_eq!(r.overall("positive_fraction"), Some(2.0 / 100_003.0));
    assert_eq!(r.overall("sgd_mode_fraction"), None);

    // A loaded state with a positive step count is not initialised again.
    let mut fresh = PerParameter::with_rule(
        vec![
            ("a".to_string(), a.clone()),
            ("big".to_string(), big.clone()),
        ],
        Probe::new(),
    )
    .unwrap();
    fresh.load_state(&s).unwrap();
    assert!(
        fresh.diagnostics().is_empty(),
        "load clears the last step's diagnostics"
    );
    fresh.step(&both).unwrap();
    assert_eq!(fresh.rule().inits.load(Ordering::SeqCst), 0);
    assert_eq!(fresh.state().scalar("a.step"), Some(3.0));
}

#[test]
fn a_non_finite_block_of_a_large_gradient_is_skipped_and_reported() {
    let (a, big, mut opt) = setup();
    let mut g = Gradients::new();
    g.insert(&a, tensor(vec![1.0, 1.0, 1.0]));
    let mut bad = vec![1.0; 100_000];
    bad[60_000] = f32::NAN;
    g.insert(&big, tensor(bad));
    let err = opt.step(&g).unwrap_err();
    assert_eq!(
        err,
        OptimError::NonFiniteGradient {
            param: "big".to_string()
        }
    );
    // `a` comes first and took its step (θ - 0.5·g).
    assert_eq!(a.value().to_vec(), vec![0.5, 1.5, 2.5]);
    // In `big` the block holding the NaN (at most CHECK_BLOCK elements) was left as it
    // was, the rest of the tensor took the step, and no NaN got in.
    let big_now = big.value().to_vec();
    let untouched: Vec<usize> = (0..big_now.len()).filter(|&i| big_now[i] != 0.5).collect();
    assert!(
        untouched.contains(&60_000) && untouched.len() <= CHECK_BLOCK,
        "{untouched:?}"
    );
    assert!(untouched
        .iter()
        .all(|&i| big_now[i] == 1.0 && i.abs_diff(60_000) < CHECK_BLOCK));
    assert!(opt
        .state()
        .tensors
        .iter()
        .all(|(_, t)| t.to_vec().iter().all(|x| x.is_finite())));
    assert!(opt
        .diagnostics()
        .per_param("positive_fraction")
        .iter()
        .all(|(name, _)| *name == "a"));

    opt.set_lr_factor(0.5);
    assert_eq!(
        (opt.lr(), opt.name(), opt.state().kind.as_str()),
        (0.25, "Probe", "Probe")
    );
}

#[test]
#[should_panic(expected = "at most 5 state buffers")]
fn more_than_five_buffers_is_refused_at_construction() {
    #[derive(Clone)]
    struct Wide;
    impl UpdateRule for Wide {
        type Stats = ();
        fn name(&self) -> &'static str {
            "Wide"
        }
        fn hyperparams(&self) -> Vec<(&'static str, f64)> {
            vec![("lr", 1.0)]
        }
        fn set_hyperparam(&mut self, _: &str, _: f64) -> Result<(), OptimError> {
            Ok(())
        }
        fn buffers(&self) -> &'static [&'static str] {
            &["a", "b", "c", "d", "e", "f"]
        }
        fn update(&self, _: u64, _: Chunk<'_>) {}
    }
    let _ = PerParameter::with_rule(Vec::new(), Wide);
}
