//! Loss functions, all with mean reduction (PyTorch's default).
//!
//! Cross-entropy and BCE-with-logits are fused ops: computing them from `exp` and `log`
//! separately overflows for large logits, while the fused forms stay finite and their
//! gradients are simply "probabilities minus targets".

use agdlab_autograd::Var;
use agdlab_tensor::elementwise::sigmoid;
use agdlab_tensor::parallel::map_assign;
use agdlab_tensor::Tensor;

/// Mean cross-entropy of `logits: [N, C]` against integer classes, with no label
/// smoothing. PyTorch equivalent: `F.cross_entropy(logits, targets)`. For label
/// smoothing use [`CrossEntropyLoss`].
///
/// # Panics
/// As [`CrossEntropyLoss::forward`].
pub fn cross_entropy(logits: &Var, targets: &[usize]) -> Var {
    CrossEntropyLoss::default().forward(logits, targets)
}

/// Cross-entropy with its options; `Default` is PyTorch's (no label smoothing, no
/// ignored class). PyTorch equivalent:
/// `torch.nn.CrossEntropyLoss(label_smoothing=ε, ignore_index=i)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropyLoss {
    /// ε in `[0, 1]`: the target puts 1-ε on the class and ε/C on every class.
    pub label_smoothing: f32,
    /// Rows whose target is this class (padding) count for nothing: the mean is over the
    /// other rows, and these get no gradient.
    pub ignore_index: Option<usize>,
}

impl CrossEntropyLoss {
    /// Mean cross-entropy of `logits: [N, C]` against integer classes, over the `M` rows
    /// whose target is not `ignore_index` (all N without one):
    ///
    /// ```text
    /// loss = -(1/M) Σ_i [ (1-ε)·log p_i[y_i] + (ε/C)·Σ_c log p_i[c] ],  p_i = softmax(x_i)
    /// ∂loss/∂x_i = (p_i - q_i)/M,  q_i[c] = (1-ε)·[c = y_i] + ε/C   (0 for ignored rows)
    /// ```
    ///
    /// When every row is ignored the loss is NaN, as in PyTorch.
    ///
    /// # Panics
    /// When `logits` is not `[N, C]`, `targets.len() != N`, a target other than
    /// `ignore_index` is `>= C`, or ε is outside `[0, 1]`.
    pub fn forward(&self, logits: &Var, targets: &[usize]) -> Var {
        assert!(
            logits.rank() == 2,
            "cross_entropy: logits must be [N, C], got {:?}",
            logits.shape()
        );
        let (n, classes) = (logits.shape()[0], logits.shape()[1]);
        assert_eq!(
            targets.len(),
            n,
            "cross_entropy: {} targets for logits {:?}",
            targets.len(),
            logits.shape()
        );
        let ignored = |t: usize| Some(t) == self.ignore_index;
        if let Some(bad) = targets.iter().find(|&&t| t >= classes && !ignored(t)) {
            panic!("cross_entropy: target class {bad} out of range for {classes} classes");
        }
        let eps = self.label_smoothing;
        assert!(
            (0.0..=1.0).contains(&eps),
            "cross_entropy: label_smoothing {eps} not in [0, 1]"
        );
        let on_class = 1.0 - eps;
        let off_class = eps / classes as f32;

        let counted = targets.iter().filter(|&&t| !ignored(t)).count();
        let inv_count = 1.0 / counted as f32;
        let x = logits.value().contiguous();
        // One pass of exp gives each row's logsumexp (for the loss: log p_i[c] = x_i[c] -
        // lse_i) and, when a backward pass may follow, the gradient for an upstream
        // gradient of 1, `(p_i - q_i)/M`, formed while each row is in cache (no
        // probabilities written to be read again in backward).
        let (grad, lse) = if logits.requires_grad() {
            let (grad, lse) = x.softmax_rows_then(|i, row, inv_sum| {
                let target = targets[i];
                if ignored(target) {
                    row.fill(0.0);
                    return;
                }
                for e in row.iter_mut() {
                    *e = (*e * inv_sum - off_class) * inv_count;
                }
                row[target] -= on_class * inv_count;
            });
            (Some(grad), lse)
        } else {
            (None, x.logsumexp(1, false).to_vec())
        };
        let xs = x.as_slice().expect("contiguous");
        let mut total = 0.0f64;
        for ((row, &target), &lse) in xs.chunks(classes).zip(targets).zip(&lse) {
            if ignored(target) {
                continue;
            }
            let log_p_target = (row[target] - lse) as f64;
            // Σ_c log p[c] = Σ_c x[c] - C·lse, only needed with smoothing.
            let sum_log_p = if eps > 0.0 {
                row.iter().map(|&v| v as f64).sum::<f64>() - classes as f64 * lse as f64
            } else {
                0.0
            };
            total -= on_class as f64 * log_p_target + off_class as f64 * sum_log_p;
        }
        let loss = Tensor::scalar((total / counted as f64) as f32);
        // Records nothing (and drops the closure) when `logits` needs no gradient.
        Var::record("cross_entropy", loss, &[logits], move |g, grads| {
            grads.add(0, || {
                let mut grad = grad.expect("formed whenever the logits need a gradient");
                // Formed for an upstream gradient of 1 (a loss's own backward): scale
                // only for another.
                let upstream = g.item();
                if upstream != 1.0 {
                    map_assign(grad.data_mut(), |v| v * upstream);
                }
                grad
            })
        })
    }
}

/// Mean squared error, `mean((pred - target)²)`. PyTorch: `F.mse_loss(pred, target)`.
///
/// # Panics
/// When the shapes differ.
pub fn mse_loss(pred: &Var, target: &Tensor) -> Var {
    assert_eq!(
        pred.shape(),
        target.shape(),
        "mse_loss: prediction {:?} vs target {:?}",
        pred.shape(),
        target.shape()
    );
    pred.sub(&Var::constant(target.clone())).sqr().mean_all()
}

/// Mean binary cross-entropy on logits, in the overflow-free form
///
/// ```text
/// ℓ(x, y) = max(x, 0) - x·y + ln(1 + e^(-|x|)),   ∂ℓ/∂x = σ(x) - y
/// ```
///
/// PyTorch equivalent: `F.binary_cross_entropy_with_logits(logits, targets)`.
///
/// # Panics
/// When the shapes differ.
pub fn bce_with_logits(logits: &Var, targets: &Tensor) -> Var {
    assert_eq!(
        logits.shape(),
        targets.shape(),
        "bce_with_logits: logits {:?} vs targets {:?}",
        logits.shape(),
        targets.shape()
    );
    let n = targets.numel();
    let per_element = logits.value().zip_map(targets, "bce_with_logits", |x, y| {
        x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
    });
    let loss = per_element.mean_all();
    let (x, y) = (logits.value().clone(), targets.clone());
    Var::record("bce_with_logits", loss, &[logits], move |g, grads| {
        let scale = g.item() / n as f32;
        grads.add(0, || {
            x.zip_map(&y, "bce_with_logits", |x, y| (sigmoid(x) - y) * scale)
        })
    })
}
