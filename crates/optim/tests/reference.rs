//! Every optimizer against an independent f64 transcription of its published update
//! equations (written plainly per coordinate, separately from the implementation), over
//! 25 steps, several configurations each, on a small vector and on one large vector
//! (which exercises the parallel chunked path).
//!
//! Hyper-parameters are given as f32 (what the optimizers take) and widened to f64 for
//! the references, so both sides use the same numbers.

mod common;

use agdlab_optim::{
    AdaBelief, AdaBeliefConfig, Adam, AdamConfig, Agd, AgdConfig, Optimizer, RAdam, RAdamConfig,
    Sgd, SgdConfig, WeightDecayMode, SGD_MODE_FRACTION,
};
use common::*;

const STEPS: usize = 25;
const N_SMALL: usize = 8;
/// Over twice the parallel threshold (32768) and odd, so chunks split unevenly.
const N_LARGE: usize = 70_001;
const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-6;
/// δ for AGD runs meant to mix modes: the small-noise coordinates have stepwise
/// differences below it, the large-noise ones above.
const MIXED_DELTA: f32 = 0.5;

fn check(
    label: &str,
    n: usize,
    make: impl FnOnce(Vec<(String, agdlab_autograd::Param)>) -> Box<dyn Optimizer>,
    reference: impl FnMut(usize, &mut [f64], &[f64]),
) {
    let got = run_impl(make, n, STEPS);
    let want = run_ref(reference, n, STEPS);
    assert_moved(label, &got);
    assert_traj_close(label, &got, &want, RTOL, ATOL);
}

// ---------------------------------------------------------------------------------------
// SGD: torch.optim.SGD documentation pseudo-code.

fn sgd_ref(c: SgdConfig, n: usize) -> impl FnMut(usize, &mut [f64], &[f64]) {
    let (lr, mu, damp, wd) = (
        c.lr as f64,
        c.momentum as f64,
        c.dampening as f64,
        c.weight_decay as f64,
    );
    let mut buf = vec![0.0f64; n];
    move |t, theta, grad| {
        for i in 0..theta.len() {
            let mut g = grad[i];
            if wd != 0.0 {
                g += wd * theta[i];
            }
            if mu != 0.0 {
                if t == 1 {
                    buf[i] = g;
                } else {
                    buf[i] = mu * buf[i] + (1.0 - damp) * g;
                }
                if c.nesterov {
                    g += mu * buf[i];
                } else {
                    g = buf[i];
                }
            }
            theta[i] -= lr * g;
        }
    }
}

fn sgd_configs() -> Vec<(&'static str, SgdConfig)> {
    let base = SgdConfig {
        lr: 0.05,
        ..Default::default()
    };
    vec![
        ("plain", base),
        (
            "momentum",
            SgdConfig {
                momentum: 0.9,
                ..base
            },
        ),
        (
            "momentum+dampening",
            SgdConfig {
                momentum: 0.9,
                dampening: 0.3,
                ..base
            },
        ),
        (
            "nesterov",
            SgdConfig {
                momentum: 0.8,
                nesterov: true,
                ..base
            },
        ),
        (
            "wd",
            SgdConfig {
                weight_decay: 0.1,
                ..base
            },
        ),
        (
            "momentum+dampening+wd",
            SgdConfig {
                momentum: 0.7,
                dampening: 0.5,
                weight_decay: 0.05,
                ..base
            },
        ),
        (
            "nesterov+wd",
            SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.05,
                ..base
            },
        ),
    ]
}

#[test]
fn sgd_matches_reference() {
    for (label, c) in sgd_configs() {
        check(
            &format!("SGD {label}"),
            N_SMALL,
            |p| Box::new(Sgd::new(p, c).unwrap()),
            sgd_ref(c, N_SMALL),
        );
    }
    let c = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.01,
        ..Default::default()
    };
    check(
        "SGD large",
        N_LARGE,
        |p| Box::new(Sgd::new(p, c).unwrap()),
        sgd_ref(c, N_LARGE),
    );
}

// ---------------------------------------------------------------------------------------
// Adam / AdamW: Kingma & Ba Algorithm 1 with torch's eps placement and AMSGrad form.

fn adam_ref(c: AdamConfig, n: usize) -> impl FnMut(usize, &mut [f64], &[f64]) {
    let (lr, b1, b2, eps, wd) = (
        c.lr as f64,
        c.betas.0 as f64,
        c.betas.1 as f64,
        c.eps as f64,
        c.weight_decay as f64,
    );
    let (mut m, mut v, mut vmax) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    move |t, theta, grad| {
        let t = t as i32;
        for i in 0..theta.len() {
            let mut g = grad[i];
            if c.decoupled_weight_decay {
                theta[i] *= 1.0 - lr * wd;
            } else {
                g += wd * theta[i];
            }
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let m_hat = m[i] / (1.0 - b1.powi(t));
            let v_used = if c.amsgrad {
                vmax[i] = vmax[i].max(v[i]);
                vmax[i]
            } else {
                v[i]
            };
            let denom = v_used.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
            theta[i] -= lr * m_hat / denom;
        }
    }
}

#[test]
fn adam_and_adamw_match_reference() {
    let adam = AdamConfig {
        lr: 0.01,
        ..Default::default()
    };
    let adamw = AdamConfig {
        lr: 0.01,
        ..AdamConfig::adamw()
    };
    let configs = [
        ("Adam", adam),
        (
            "Adam amsgrad",
            AdamConfig {
                amsgrad: true,
                ..adam
            },
        ),
        (
            "Adam L2",
            AdamConfig {
                weight_decay: 0.1,
                ..adam
            },
        ),
        (
            "Adam L2+amsgrad",
            AdamConfig {
                weight_decay: 0.1,
                amsgrad: true,
                ..adam
            },
        ),
        (
            "Adam betas/eps",
            AdamConfig {
                betas: (0.8, 0.99),
                eps: 1e-3,
                ..adam
            },
        ),
        ("AdamW default wd", adamw),
        (
            "AdamW wd 0.5",
            AdamConfig {
                weight_decay: 0.5,
                ..adamw
            },
        ),
        (
            "AdamW amsgrad",
            AdamConfig {
                weight_decay: 0.2,
                amsgrad: true,
                ..adamw
            },
        ),
    ];
    for (label, c) in configs {
        check(
            label,
            N_SMALL,
            |p| Box::new(Adam::new(p, c).unwrap()),
            adam_ref(c, N_SMALL),
        );
    }
    let c = AdamConfig {
        weight_decay: 0.1,
        amsgrad: true,
        ..adamw
    };
    check(
        "AdamW large",
        N_LARGE,
        |p| Box::new(Adam::new(p, c).unwrap()),
        adam_ref(c, N_LARGE),
    );
}

#[test]
fn adamw_defaults_and_names() {
    assert_eq!(AdamConfig::adamw().weight_decay, 1e-2);
    let p = vec![("w".to_string(), param(vec![1.0], &[1]))];
    assert_eq!(
        Adam::new(p.clone(), AdamConfig::default()).unwrap().name(),
        "Adam"
    );
    assert_eq!(Adam::new(p, AdamConfig::adamw()).unwrap().name(), "AdamW");
}

// ---------------------------------------------------------------------------------------
// AGD: Yue et al. 2023, Algorithm 1, with the atorch options (weight-decay modes,
// AMSGrad, clip, Win with z_0 = θ_0).

pub struct AgdRef {
    c: AgdConfig,
    m: Vec<f64>,
    b: Vec<f64>,
    b_max: Vec<f64>,
    z: Vec<f64>,
    pub sgd_fraction: f64,
}

impl AgdRef {
    pub fn new(c: AgdConfig, n: usize) -> AgdRef {
        AgdRef {
            c,
            m: vec![0.0; n],
            b: vec![0.0; n],
            b_max: vec![0.0; n],
            z: vec![0.0; n],
            sgd_fraction: 0.0,
        }
    }

    pub fn step(&mut self, t: usize, theta: &mut [f64], grad: &[f64]) {
        let c = self.c;
        let (lr, b1, b2, delta, wd) = (
            c.lr as f64,
            c.betas.0 as f64,
            c.betas.1 as f64,
            c.delta as f64,
            c.weight_decay as f64,
        );
        let ti = t as i32;
        let bc1 = 1.0 - b1.powi(ti);
        let bc2 = 1.0 - b2.powi(ti);
        let mut in_sgd = 0usize;
        for i in 0..theta.len() {
            if c.win && t == 1 {
                self.z[i] = theta[i];
            }
            let mut g = grad[i];
            if !c.win {
                match c.weight_decay_mode {
                    WeightDecayMode::Decoupled => theta[i] *= 1.0 - lr * wd,
                    WeightDecayMode::Fixed => theta[i] *= 1.0 - wd,
                    WeightDecayMode::L2 => g += wd * theta[i],
                }
            }
            // Bias-corrected momentum before and after this step.
            let m_hat_prev = if t > 1 {
                self.m[i] / (1.0 - b1.powi(ti - 1))
            } else {
                0.0
            };
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            let m_hat = self.m[i] / bc1;
            let s = m_hat - m_hat_prev;
            self.b[i] = b2 * self.b[i] + (1.0 - b2) * s * s;
            let b_used = if c.amsgrad {
                self.b_max[i] = self.b_max[i].max(self.b[i]);
                self.b_max[i]
            } else {
                self.b[i]
            };
            let threshold = delta * bc2.sqrt();
            if b_used.sqrt() <= threshold {
                in_sgd += 1;
            }
            let mut u = self.m[i] / b_used.sqrt().max(threshold);
            if let Some(clip) = c.clip {
                let clip = clip as f64;
                u = u.clamp(-clip, clip);
            }
            let gamma_t = lr * bc2.sqrt() / bc1;
            if c.win {
                self.z[i] = (self.z[i] - gamma_t * u) / (1.0 + wd * gamma_t);
                let tau = 1.0 / (3.0 + 2.0 * gamma_t * wd);
                theta[i] = tau * theta[i] - tau * 2.0 * gamma_t * u + 2.0 * tau * self.z[i];
            } else {
                theta[i] -= gamma_t * u;
            }
        }
        self.sgd_fraction = in_sgd as f64 / theta.len() as f64;
    }
}

/// Run AGD and its reference side by side, also comparing the SGD-mode fraction of every
/// step; returns the reference fractions.
fn check_agd(label: &str, c: AgdConfig, n: usize) -> Vec<f64> {
    let p = param(init32(n), &[n]);
    let mut opt = Agd::new(vec![("w".to_string(), p.clone())], c).unwrap();
    let mut reference = AgdRef::new(c, n);
    let mut theta = init64(n);
    let (mut got, mut want, mut fractions) = (Vec::new(), Vec::new(), Vec::new());
    for t in 1..=STEPS {
        let grads = grads_at(t, opt.params());
        opt.step(&grads).unwrap();
        got.push(p.value().to_vec());
        let g: Vec<f64> = theta
            .iter()
            .enumerate()
            .map(|(i, &th)| grad_fn(t, i, th))
            .collect();
        reference.step(t, &mut theta, &g);
        want.push(theta.clone());
        let report = opt.diagnostics();
        let overall = report.overall(SGD_MODE_FRACTION).unwrap();
        let per_param = report.per_param(SGD_MODE_FRACTION);
        assert_eq!(per_param.len(), 1);
        assert!(
            (overall - reference.sgd_fraction).abs() < 1e-12
                && (per_param[0].1 - reference.sgd_fraction).abs() < 1e-12,
            "{label}: step {t}: SGD-mode fraction {overall} vs reference {}",
            reference.sgd_fraction
        );
        fractions.push(reference.sgd_fraction);
    }
    assert_moved(label, &got);
    assert_traj_close(label, &got, &want, RTOL, ATOL);
    fractions
}

fn agd_configs() -> Vec<(&'static str, AgdConfig)> {
    let base = AgdConfig {
        lr: 0.01,
        ..Default::default()
    };
    // δ large enough that the small-noise coordinates switch to SGD mode.
    let mixed = AgdConfig {
        delta: MIXED_DELTA,
        ..base
    };
    vec![
        ("default", base),
        ("mixed modes", mixed),
        (
            "decoupled wd",
            AgdConfig {
                weight_decay: 0.1,
                ..mixed
            },
        ),
        (
            "fixed wd",
            AgdConfig {
                weight_decay: 0.01,
                weight_decay_mode: WeightDecayMode::Fixed,
                ..mixed
            },
        ),
        (
            "L2 wd",
            AgdConfig {
                weight_decay: 0.1,
                weight_decay_mode: WeightDecayMode::L2,
                ..mixed
            },
        ),
        (
            "amsgrad",
            AgdConfig {
                amsgrad: true,
                ..mixed
            },
        ),
        (
            "clip",
            AgdConfig {
                clip: Some(0.5),
                ..mixed
            },
        ),
        ("win", AgdConfig { win: true, ..mixed }),
        (
            "win wd",
            AgdConfig {
                win: true,
                weight_decay: 0.1,
                ..mixed
            },
        ),
        (
            "amsgrad+clip+L2",
            AgdConfig {
                amsgrad: true,
                clip: Some(1.0),
                weight_decay: 0.05,
                weight_decay_mode: WeightDecayMode::L2,
                ..mixed
            },
        ),
        (
            "amsgrad+clip+fixed",
            AgdConfig {
                amsgrad: true,
                clip: Some(2.0),
                weight_decay: 0.005,
                weight_decay_mode: WeightDecayMode::Fixed,
                ..mixed
            },
        ),
        (
            "win+amsgrad+clip+wd",
            AgdConfig {
                win: true,
                amsgrad: true,
                clip: Some(1.0),
                weight_decay: 0.05,
                ..mixed
            },
        ),
        (
            "betas",
            AgdConfig {
                betas: (0.8, 0.95),
                ..mixed
            },
        ),
        (
            "transformer delta",
            AgdConfig {
                delta: 1e-14,
                ..base
            },
        ),
    ]
}

#[test]
fn agd_matches_reference() {
    for (label, c) in agd_configs() {
        let fractions = check_agd(&format!("AGD {label}"), c, N_SMALL);
        if c.delta == MIXED_DELTA {
            // These configurations are meant to exercise both branches.
            assert!(
                fractions.iter().any(|&f| f > 0.0) && fractions.iter().any(|&f| f < 1.0),
                "AGD {label}: expected both SGD-mode and adaptive coordinates: {fractions:?}"
            );
        }
    }
}

#[test]
fn agd_large_tensor_matches_reference() {
    let c = AgdConfig {
        lr: 0.01,
        delta: MIXED_DELTA,
        amsgrad: true,
        clip: Some(1.0),
        ..Default::default()
    };
    check_agd("AGD large", c, N_LARGE);
    let c = AgdConfig {
        lr: 0.01,
        delta: MIXED_DELTA,
        win: true,
        weight_decay: 0.1,
        ..Default::default()
    };
    check_agd("AGD large win", c, N_LARGE);
}

// ---------------------------------------------------------------------------------------
// AdaBelief: adabelief-pytorch 0.2, rectify=False.

fn adabelief_ref(c: AdaBeliefConfig, n: usize) -> impl FnMut(usize, &mut [f64], &[f64]) {
    let (lr, b1, b2, eps, wd) = (
        c.lr as f64,
        c.betas.0 as f64,
        c.betas.1 as f64,
        c.eps as f64,
        c.weight_decay as f64,
    );
    let (mut m, mut s, mut smax) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    move |t, theta, grad| {
        let t = t as i32;
        for i in 0..theta.len() {
            let mut g = grad[i];
            match c.weight_decay_mode {
                WeightDecayMode::Decoupled => theta[i] *= 1.0 - lr * wd,
                WeightDecayMode::Fixed => theta[i] *= 1.0 - wd,
                WeightDecayMode::L2 => g += wd * theta[i],
            }
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            s[i] = b2 * s[i] + (1.0 - b2) * (g - m[i]) * (g - m[i]) + eps;
            let s_used = if c.amsgrad {
                smax[i] = smax[i].max(s[i]);
                smax[i]
            } else {
                s[i]
            };
            let denom = s_used.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
            theta[i] -= lr / (1.0 - b1.powi(t)) * m[i] / denom;
        }
    }
}

#[test]
fn adabelief_matches_reference() {
    let base = AdaBeliefConfig {
        lr: 0.01,
        ..Default::default()
    };
    let configs = [
        ("default", base),
        ("eps 1e-4", AdaBeliefConfig { eps: 1e-4, ..base }),
        (
            "amsgrad",
            AdaBeliefConfig {
                amsgrad: true,
                eps: 1e-6,
                ..base
            },
        ),
        (
            "decoupled wd",
            AdaBeliefConfig {
                weight_decay: 0.2,
                ..base
            },
        ),
        (
            "fixed wd",
            AdaBeliefConfig {
                weight_decay: 0.01,
                weight_decay_mode: WeightDecayMode::Fixed,
                ..base
            },
        ),
        (
            "L2 wd+amsgrad",
            AdaBeliefConfig {
                weight_decay: 0.1,
                weight_decay_mode: WeightDecayMode::L2,
                amsgrad: true,
                ..base
            },
        ),
    ];
    for (label, c) in configs {
        check(
            &format!("AdaBelief {label}"),
            N_SMALL,
            |p| Box::new(AdaBelief::new(p, c).unwrap()),
            adabelief_ref(c, N_SMALL),
        );
    }
    let c = AdaBeliefConfig {
        weight_decay: 0.1,
        amsgrad: true,
        ..base
    };
    check(
        "AdaBelief large",
        N_LARGE,
        |p| Box::new(AdaBelief::new(p, c).unwrap()),
        adabelief_ref(c, N_LARGE),
    );
}

// ---------------------------------------------------------------------------------------
// RAdam: Liu et al. 2020, Algorithm 2, as in torch.optim.RAdam.

fn radam_ref(
    c: RAdamConfig,
    n: usize,
    rectified_steps: &mut Vec<usize>,
) -> impl FnMut(usize, &mut [f64], &[f64]) + '_ {
    let (lr, b1, b2, eps, wd) = (
        c.lr as f64,
        c.betas.0 as f64,
        c.betas.1 as f64,
        c.eps as f64,
        c.weight_decay as f64,
    );
    let (mut m, mut v) = (vec![0.0f64; n], vec![0.0f64; n]);
    move |t, theta, grad| {
        let tf = t as f64;
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * tf * b2.powf(tf) / (1.0 - b2.powf(tf));
        if rho_t > 5.0 {
            rectified_steps.push(t);
        }
        for i in 0..theta.len() {
            let mut g = grad[i];
            if c.decoupled_weight_decay {
                theta[i] *= 1.0 - lr * wd;
            } else {
                g += wd * theta[i];
            }
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let m_hat = m[i] / (1.0 - b1.powf(tf));
            if rho_t > 5.0 {
                let l = (1.0 - b2.powf(tf)).sqrt() / (v[i].sqrt() + eps);
                let r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                    .sqrt();
                theta[i] -= lr * m_hat * r * l;
            } else {
                theta[i] -= lr * m_hat;
            }
        }
    }
}

#[test]
fn radam_matches_reference() {
    let base = RAdamConfig {
        lr: 0.01,
        ..Default::default()
    };
    let configs = [
        ("default", base),
        (
            "beta2 0.99",
            RAdamConfig {
                betas: (0.9, 0.99),
                ..base
            },
        ),
        (
            "L2 wd",
            RAdamConfig {
                betas: (0.9, 0.99),
                weight_decay: 0.1,
                ..base
            },
        ),
        (
            "decoupled wd",
            RAdamConfig {
                betas: (0.85, 0.98),
                weight_decay: 0.1,
                decoupled_weight_decay: true,
                ..base
            },
        ),
    ];
    for (label, c) in configs {
        let mut rectified = Vec::new();
        check(
            &format!("RAdam {label}"),
            N_SMALL,
            |p| Box::new(RAdam::new(p, c).unwrap()),
            radam_ref(c, N_SMALL, &mut rectified),
        );
        // Both branches must be exercised within 25 steps.
        assert!(
            !rectified.is_empty() && rectified[0] > 1,
            "RAdam {label}: rectified steps {rectified:?}"
        );
    }
    let c = RAdamConfig {
        betas: (0.9, 0.99),
        weight_decay: 0.05,
        ..base
    };
    let mut rectified = Vec::new();
    check(
        "RAdam large",
        N_LARGE,
        |p| Box::new(RAdam::new(p, c).unwrap()),
        radam_ref(c, N_LARGE, &mut rectified),
    );
}
