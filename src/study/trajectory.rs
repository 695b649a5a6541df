//! Optimizers on two-parameter test functions (Beale, Rosenbrock): the path each one
//! takes from the same start, computed with the autograd like any model.
//!
//! The two coordinates are one parameter of shape `[2]`; each step puts it on a fresh
//! tape, evaluates the function from its two halves and steps the optimizer with the
//! gradient, as the training loop does for a network.

use crate::autograd::{Param, Tape, Var};
use crate::optim::{OptimError, Optimizer};
use crate::tensor::Tensor;

/// A classic optimizer test function of two variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestFunction {
    /// f(x, y) = (1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)², minimum 0 at
    /// (3, 0.5), in a flat curved valley with steep walls.
    Beale,
    /// f(x, y) = (1 - x)² + 100 (y - x²)², minimum 0 at (1, 1) at the end of a long,
    /// narrow, curved valley.
    Rosenbrock,
}

impl TestFunction {
    pub fn name(self) -> &'static str {
        match self {
            TestFunction::Beale => "beale",
            TestFunction::Rosenbrock => "rosenbrock",
        }
    }

    /// Where the minimum is.
    pub fn minimum(self) -> (f64, f64) {
        match self {
            TestFunction::Beale => (3.0, 0.5),
            TestFunction::Rosenbrock => (1.0, 1.0),
        }
    }

    /// The common start of every optimizer.
    pub fn start(self) -> (f64, f64) {
        match self {
            TestFunction::Beale => (1.0, 1.5),
            TestFunction::Rosenbrock => (-1.5, 2.0),
        }
    }

    /// The (x, y) window drawn.
    pub fn window(self) -> ((f64, f64), (f64, f64)) {
        match self {
            TestFunction::Beale => ((-0.5, 4.5), (-1.5, 2.0)),
            TestFunction::Rosenbrock => ((-2.0, 2.0), (-1.0, 3.0)),
        }
    }

    /// f(x, y) in f64 (for the contours).
    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            TestFunction::Beale => {
                (1.5 - x + x * y).powi(2)
                    + (2.25 - x + x * y * y).powi(2)
                    + (2.625 - x + x * y.powi(3)).powi(2)
            }
            TestFunction::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
        }
    }

    /// f at the point `xy` (shape `[2]`) on its tape, as a scalar `[1]`.
    pub fn on_tape(self, xy: &Var) -> Var {
        let x = xy.narrow(0, 0, 1);
        let y = xy.narrow(0, 1, 1);
        match self {
            TestFunction::Beale => {
                let term = |c: f32, y_power: &Var| (&x * y_power).sub(&x).add_scalar(c).sqr();
                let y2 = y.sqr();
                let y3 = &y2 * &y;
                &(&term(1.5, &y) + &term(2.25, &y2)) + &term(2.625, &y3)
            }
            TestFunction::Rosenbrock => {
                let a = x.neg().add_scalar(1.0).sqr();
                let b = (&y - &x.sqr()).sqr().mul_scalar(100.0);
                &a + &b
            }
        }
    }
}

/// One optimizer's path.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// The start, then the point after each step.
    pub points: Vec<(f64, f64)>,
    /// The first step after which the point stayed within `tolerance` of the minimum up
    /// to the end; `None` when it did not end there.
    pub converged_at: Option<usize>,
    /// Distance from the last point to the minimum.
    pub final_distance: f64,
}

/// The fresh parameter (x, y) at `f`'s start, to hand to an optimizer.
pub fn start_param(f: TestFunction) -> Param {
    let (x, y) = f.start();
    Param::new(Tensor::from_vec(vec![x as f32, y as f32], &[2]).expect("two values for shape [2]"))
}

/// Run `steps` steps of `optimizer` (built over `param`, from [`start_param`]) on `f`.
///
/// # Errors
/// The optimizer's, for a non-finite gradient (a learning rate far too high).
pub fn trajectory(
    f: TestFunction,
    optimizer: &mut dyn Optimizer,
    param: &Param,
    steps: usize,
    tolerance: f64,
) -> Result<Trajectory, OptimError> {
    let point = |p: &Param| {
        let v = p.value().to_vec();
        (v[0] as f64, v[1] as f64)
    };
    let (mx, my) = f.minimum();
    let distance = |(x, y): (f64, f64)| ((x - mx).powi(2) + (y - my).powi(2)).sqrt();
    let mut points = vec![point(param)];
    for _ in 0..steps {
        let tape = Tape::new();
        let loss = f.on_tape(&tape.param(param)).sum_all();
        optimizer.step(&loss.backward())?;
        points.push(point(param));
    }
    let last_outside = points.iter().rposition(|&p| distance(p) > tolerance);
    let converged_at = match last_outside {
        None => Some(0),
        Some(i) if i + 1 < points.len() => Some(i + 1),
        Some(_) => None,
    };
    let final_distance = distance(*points.last().expect("the start at least"));
    Ok(Trajectory {
        points,
        converged_at,
        final_distance,
    })
}
