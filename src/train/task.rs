//! What an example tells the training loop: how to run one step and how to evaluate.

use crate::autograd::{Tape, Var};

/// One training step's forward pass, as [`Task::train_step`] returns it.
pub struct StepOutput {
    /// The loss to minimise (a mean over the step's examples).
    pub loss: Var,
    /// How many examples (images, tokens, clicks) the loss averages over.
    pub examples: usize,
    /// Sums to report as means over the epoch's examples, by metric name: for example
    /// `("train_acc", correct as f64)`.
    pub sums: Vec<(&'static str, f64)>,
}

/// Whether a larger value of a metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A training problem: the data, the model's forward pass and the loss, and how to
/// evaluate. [`fit`](super::fit) does everything else (the tape, backward, clipping, the
/// schedule, the optimizer step, NaN checks, eval mode, metrics, checkpoints, progress).
pub trait Task {
    /// Number of optimizer steps in one epoch (at least 1).
    fn steps_per_epoch(&self) -> usize;

    /// Called before each epoch (0-based): reshuffle, reset a recurrent state. The data
    /// order must depend only on the seed and `epoch`, so a resumed run sees the same
    /// batches as an uninterrupted one.
    fn start_epoch(&mut self, epoch: usize) {
        let _ = epoch;
    }

    /// The forward pass of step `step` (0-based within the epoch) on `tape`.
    fn train_step(&mut self, tape: &Tape, step: usize) -> StepOutput;

    /// The training metrics of an epoch from its mean loss: `train_loss` by default; a
    /// language model adds `train_ppl`.
    fn train_metrics(&self, mean_loss: f64) -> Vec<(String, f64)> {
        vec![("train_loss".to_string(), mean_loss)]
    }

    /// The progress bar's status from the epoch's running mean loss.
    fn progress_status(&self, mean_loss: f64) -> String {
        format!("loss {mean_loss:.4}")
    }

    /// Evaluate on held-out data after an epoch (the model is in eval mode; record
    /// nothing: use [`Tape::no_grad`]). Every metric whose name ends in `loss` or `ppl` is
    /// checked for NaN.
    fn evaluate(&mut self) -> Vec<(String, f64)>;

    /// The evaluation metric that decides the best epoch, and which way is better.
    fn primary_metric(&self) -> (&'static str, Better);

    /// Metrics measured once after the last epoch (a language model's test perplexity).
    fn final_evaluation(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// A language model's metrics for one split from its mean loss per token (natural log):
/// `{split}_loss` and `{split}_ppl` = exp(loss), the perplexity.
pub fn loss_and_perplexity(split: &str, mean_loss: f64) -> Vec<(String, f64)> {
    vec![
        (format!("{split}_loss"), mean_loss),
        (format!("{split}_ppl"), mean_loss.exp()),
    ]
}

/// A language model's progress status: the running loss and its perplexity.
pub fn perplexity_status(mean_loss: f64) -> String {
    format!("loss {mean_loss:.3} ppl {:.1}", mean_loss.exp())
}

/// The order in which to visit `n` training examples in epoch `epoch` (0-based): a
/// permutation that depends only on `(seed, epoch)`, so a resumed run sees the same
/// batches as an uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..n).collect();
    let epoch_seed = seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64);
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(epoch_seed));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
        let order = epoch_order(100, 7, 3);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(100, 7, 3));
        assert_ne!(order, epoch_order(100, 7, 4));
        assert_ne!(order, epoch_order(100, 8, 3));
    }
}
