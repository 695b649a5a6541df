//! AGD's study options: the stepwise difference every k steps, and the switching monitor.
//!
//! - With k = 1 (and with the monitor on) AGD is the paper's, bit for bit: compared with a
//!   scalar transcription of the f32 arithmetic AGD used before the options existed.
//! - With k > 1 it follows an f64 transcription of the definition (b updated at steps
//!   1, 1+k, ..., kept between, bias-corrected by its number of updates).
//! - The monitor's flip fraction is the share of coordinates whose mode differs from the
//!   previous step's, as read from the modes themselves.

mod common;

use agdlab_optim::{Agd, AgdConfig, Optimizer, MODE_FLIP_FRACTION, SGD_MODE_FRACTION};
use common::*;

/// One step of AGD in f32 exactly as the kernel computed it before `difference_every` and
/// `monitor_switching` existed (no weight decay, Win or AMSGRAD; optional clip).
struct FrozenAgd {
    c: AgdConfig,
    m: Vec<f32>,
    b: Vec<f32>,
}

impl FrozenAgd {
    fn step(&mut self, t: u64, theta: &mut [f32], grad: &[f32]) {
        let (b1, b2) = self.c.betas;
        let clip = self.c.clip.unwrap_or(f32::INFINITY);
        let tf = t as f64;
        let bc1 = 1.0 - (b1 as f64).powf(tf);
        let bc1_old = 1.0 - (b1 as f64).powf(tf - 1.0);
        let bc2 = 1.0 - (b2 as f64).powf(tf);
        let inv_bc1 = (1.0 / bc1) as f32;
        let inv_bc1_old = if t == 1 { 0.0 } else { (1.0 / bc1_old) as f32 };
        let delta_adj = (self.c.delta as f64 * bc2.sqrt()) as f32;
        let lr_adj = (self.c.lr as f64 * bc2.sqrt() / bc1) as f32;
        let keep = 1.0 - self.c.lr * self.c.weight_decay;
        for i in 0..theta.len() {
            let g = grad[i];
            let m_old = self.m[i];
            let m_new = b1 * m_old + (1.0 - b1) * g;
            self.m[i] = m_new;
            let s = m_new * inv_bc1 - m_old * inv_bc1_old;
            self.b[i] = b2 * self.b[i] + (1.0 - b2) * s * s;
            let root = self.b[i].sqrt();
            let denom = if root <= delta_adj { delta_adj } else { root };
            let ratio = m_new / denom;
            let u = if ratio > clip {
                clip
            } else if ratio < -clip {
                -clip
            } else {
                ratio
            };
            theta[i] = theta[i] * keep - lr_adj * u;
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn k_equal_1_and_the_monitor_leave_agd_unchanged_bit_for_bit() {
    let n = 100_003; // above the parallel threshold, and odd
    for base in [
        AgdConfig {
            lr: 0.01,
            ..Default::default()
        },
        AgdConfig {
            lr: 0.01,
            delta: 0.05,
            clip: Some(0.5),
            ..Default::default()
        },
    ] {
        for monitor in [false, true] {
            let c = AgdConfig {
                difference_every: 1,
                monitor_switching: monitor,
                ..base
            };
            let p = param(init32(n), &[n]);
            let mut opt = Agd::new(vec![("w".into(), p.clone())], c).unwrap();
            let mut frozen = FrozenAgd {
                c,
                m: vec![0.0; n],
                b: vec![0.0; n],
            };
            let mut theta = init32(n);
            for t in 1..=12 {
                let grads = grads_at(t, opt.params());
                let g = grads.get(&p).unwrap().to_vec();
                opt.step(&grads).unwrap();
                frozen.step(t as u64, &mut theta, &g);
                assert_eq!(bits(&p.value().to_vec()), bits(&theta), "{c:?}: step {t}");
            }
        }
    }
}

/// AGD from the definition in f64, with b updated every `k` steps.
fn reference_every_k(c: AgdConfig, k: usize, n: usize, steps: usize) -> Vec<Vec<f64>> {
    let (b1, b2) = (c.betas.0 as f64, c.betas.1 as f64);
    let (mut theta, mut m, mut b) = (init64(n), vec![0.0; n], vec![0.0; n]);
    let mut out = Vec::new();
    for t in 1..=steps {
        let updates = (t - 1) / k + 1;
        let bc1 = 1.0 - b1.powi(t as i32);
        let bc2 = 1.0 - b2.powi(updates as i32);
        for i in 0..n {
            let g = grad_fn(t, i, theta[i]);
            let m_old = m[i];
            m[i] = b1 * m_old + (1.0 - b1) * g;
            if (t - 1) % k == 0 {
                let s = if t == 1 {
                    m[i] / bc1
                } else {
                    m[i] / bc1 - m_old / (1.0 - b1.powi(t as i32 - 1))
                };
                b[i] = b2 * b[i] + (1.0 - b2) * s * s;
            }
            let denom = b[i].sqrt().max(c.delta as f64 * bc2.sqrt());
            theta[i] -= c.lr as f64 * bc2.sqrt() / bc1 * m[i] / denom;
        }
        out.push(theta.clone());
    }
    out
}

#[test]
fn the_difference_every_k_steps_follows_its_definition() {
    let n = 64;
    for k in [2, 5] {
        let c = AgdConfig {
            lr: 0.01,
            delta: 1e-3,
            difference_every: k,
            ..Default::default()
        };
        let p = param(init32(n), &[n]);
        let mut opt = Agd::new(vec![("w".into(), p.clone())], c).unwrap();
        let want = reference_every_k(c, k as usize, n, 15);
        for (t, want) in want.iter().enumerate() {
            opt.step(&grads_at(t + 1, opt.params())).unwrap();
            let got = p.value().to_vec();
            for i in 0..n {
                assert!(
                    (got[i] as f64 - want[i]).abs() <= 2e-5 * want[i].abs() + 2e-6,
                    "k {k}, step {}, coordinate {i}: {} vs {}",
                    t + 1,
                    got[i],
                    want[i]
                );
            }
        }
    }
    // k = 0 is refused, naming the option.
    let err = Agd::new(
        vec![("w".into(), param(vec![0.0], &[1]))],
        AgdConfig {
            difference_every: 0,
            ..Default::default()
        },
    );
    assert!(err.unwrap_err().to_string().contains("difference_every"));
}

#[test]
fn the_flip_fraction_counts_coordinates_whose_mode_changed() {
    let n = 40;
    // δ near the size of the gradient differences, so coordinates change mode often.
    let c = AgdConfig {
        lr: 0.01,
        delta: 0.3,
        monitor_switching: true,
        ..Default::default()
    };
    let p = param(init32(n), &[n]);
    let mut opt = Agd::new(vec![("w".into(), p.clone())], c).unwrap();
    let mut previous: Option<Vec<f32>> = None;
    let mut total_flips = 0.0;
    for t in 1..=30 {
        opt.step(&grads_at(t, opt.params())).unwrap();
        let modes = opt.state().tensor("w.sgd_mode").unwrap().to_vec();
        let report = opt.diagnostics();
        let flips = report.overall(MODE_FLIP_FRACTION).unwrap();
        let in_sgd = modes.iter().filter(|&&m| m == 1.0).count() as f64 / n as f64;
        assert_eq!(report.overall(SGD_MODE_FRACTION), Some(in_sgd), "step {t}");
        let expected = match &previous {
            None => 0.0, // no previous mode at the first step
            Some(before) => {
                before.iter().zip(&modes).filter(|(a, b)| a != b).count() as f64 / n as f64
            }
        };
        assert_eq!(flips, expected, "step {t}");
        total_flips += flips;
        previous = Some(modes);
    }
    assert!(
        total_flips > 0.0,
        "the sequence must make some coordinates switch"
    );
    // Without the monitor the fraction is not reported at all.
    let mut plain = Agd::new(
        vec![("w".into(), param(init32(n), &[n]))],
        AgdConfig {
            delta: 0.3,
            ..Default::default()
        },
    )
    .unwrap();
    plain.step(&grads_at(1, plain.params())).unwrap();
    assert_eq!(plain.diagnostics().overall(MODE_FLIP_FRACTION), None);
}
