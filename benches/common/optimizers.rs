//! The optimizers of a training-step bench: all six, built as the examples build them
//! (`OptimizerSettings`, each optimizer's own weight decay: 0, or 1e-2 for AdamW), and as
//! `benches/pytorch_common.py`'s `make_optimizer` builds PyTorch's, so a bench can time
//! its whole step with each and the comparison scripts compare like with like.

use agdlab::autograd::Param;
use agdlab::optim::{Optimizer, ParamGroup};
use agdlab::train::{OptimizerKind, OptimizerSettings};

/// `(kind, optimizer)` for AGD (with `delta`), SGD (with `sgd_momentum`), Adam, AdamW,
/// AdaBelief and RAdam over `params`, each at `lr(kind)`.
pub fn step_optimizers(
    params: &[(String, Param)],
    lr: impl Fn(OptimizerKind) -> f32,
    delta: f32,
    sgd_momentum: f32,
) -> Vec<(OptimizerKind, Box<dyn Optimizer>)> {
    OptimizerKind::ALL
        .into_iter()
        .map(|kind| {
            let settings = OptimizerSettings {
                kind,
                lr: lr(kind),
                delta,
                weight_decay: None,
                momentum: sgd_momentum,
                difference_every: 1,
                monitor_switching: false,
            };
            let optimizer = settings
                .build(vec![ParamGroup::new(params.to_vec())])
                .expect("valid settings");
            (kind, optimizer)
        })
        .collect()
}
