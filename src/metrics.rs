//! Metrics of binary classifiers (click-through-rate models): the area under the ROC
//! curve and the log loss.
//!
//! - [`auc`]: exact, from the ranks of the scores, with tied scores counting one half
//!   (the Mann-Whitney U statistic), in `O(n log n)`. scikit-learn's `roc_auc_score`.
//! - [`log_loss`] from probabilities, [`log_loss_with_logits`] from logits (no
//!   clipping needed: the overflow-free form is used). scikit-learn's `log_loss`.
//!
//! Labels are `f32` 0 or 1, as the targets of
//! [`bce_with_logits`](crate::nn::bce_with_logits); a label above 0.5 counts as positive.

/// The area under the ROC curve: the probability that a random positive example scores
/// higher than a random negative one, ties counting one half. `None` when the labels
/// hold only one class (the AUC is then undefined).
///
/// ```text
/// AUC = (1/(P·N)) Σ_{positive i} Σ_{negative j} ([s_i > s_j] + ½[s_i = s_j])
/// ```
///
/// computed by sorting the scores once and walking groups of equal scores.
///
/// # Panics
/// When `scores` and `labels` differ in length, or a score is NaN.
pub fn auc(scores: &[f32], labels: &[f32]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "auc: {} scores for {} labels",
        scores.len(),
        labels.len()
    );
    assert!(!scores.iter().any(|s| s.is_nan()), "auc: a score is NaN");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut negatives_below, mut pairs_won) = (0u64, 0.0f64);
    let mut group = order.as_slice();
    while let Some(&first) = group.first() {
        // One group of equal scores (+0 and -0 are equal scores).
        let len = group
            .iter()
            .position(|&i| scores[i] != scores[first])
            .unwrap_or(group.len());
        let positives = group[..len].iter().filter(|&&i| labels[i] > 0.5).count() as u64;
        let negatives = len as u64 - positives;
        pairs_won += (positives * negatives_below) as f64 + 0.5 * (positives * negatives) as f64;
        negatives_below += negatives;
        group = &group[len..];
    }
    let positives = scores.len() as u64 - negatives_below;
    (positives > 0 && negatives_below > 0)
        .then(|| pairs_won / (positives as f64 * negatives_below as f64))
}

/// The mean negative log-likelihood of the labels under the predicted probabilities,
/// `-(1/n) Σ [y·ln p + (1-y)·ln(1-p)]`, with each `p` clipped into `[1e-15, 1 - 1e-15]`
/// so a confident mistake costs a large but finite amount (scikit-learn's historical
/// default). 0 for no examples.
///
/// # Panics
/// When the lengths differ.
pub fn log_loss(probabilities: &[f32], labels: &[f32]) -> f64 {
    assert_eq!(
        probabilities.len(),
        labels.len(),
        "log_loss: lengths differ"
    );
    const CLIP: f64 = 1e-15;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = (p as f64).clamp(CLIP, 1.0 - CLIP);
            let y = y as f64;
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum();
    total / probabilities.len().max(1) as f64
}

/// [`log_loss`] of the probabilities `σ(logits)`, computed from the logits in the
/// overflow-free form `max(x, 0) - x·y + ln(1 + e^(-|x|))`, in f64: the value
/// `bce_with_logits` gives, without clipping. 0 for no examples.
///
/// # Panics
/// When the lengths differ.
pub fn log_loss_with_logits(logits: &[f32], labels: &[f32]) -> f64 {
    assert_eq!(
        logits.len(),
        labels.len(),
        "log_loss_with_logits: lengths differ"
    );
    let total: f64 = logits
        .iter()
        .zip(labels)
        .map(|(&x, &y)| {
            let (x, y) = (x as f64, y as f64);
            x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
        })
        .sum();
    total / logits.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every (positive, negative) pair, O(n²).
    fn auc_by_pairs(scores: &[f32], labels: &[f32]) -> f64 {
        let (mut won, mut pairs) = (0.0, 0.0);
        for (&si, &yi) in scores.iter().zip(labels) {
            for (&sj, &yj) in scores.iter().zip(labels) {
                if yi == 1.0 && yj == 0.0 {
                    won += if si > sj {
                        1.0
                    } else if si == sj {
                        0.5
                    } else {
                        0.0
                    };
                    pairs += 1.0;
                }
            }
        }
        won / pairs
    }

    #[test]
    fn auc_of_hand_computed_cases() {
        // scikit-learn's documentation example: 3 of the 4 pairs are ordered.
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]),
            Some(0.75)
        );
        // Ties count one half: positives {0.5, 0.9}, negatives {0.5, 0.5}:
        // 0.5 vs 0.5 twice (½ each), 0.9 vs 0.5 twice (1 each): 3 of 4.
        assert_eq!(
            auc(&[0.5, 0.5, 0.5, 0.9], &[0.0, 1.0, 0.0, 1.0]),
            Some(0.75)
        );
        // All scores equal: one half, whatever the order of the examples.
        assert_eq!(auc(&[2.0; 5], &[1.0, 0.0, 0.0, 1.0, 0.0]), Some(0.5));
        // Perfect and perfectly wrong.
        assert_eq!(auc(&[1.0, 2.0, 3.0], &[0.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(auc(&[3.0, 2.0, 1.0], &[0.0, 1.0, 1.0]), Some(0.0));
        // -0 and +0 are the same score.
        assert_eq!(auc(&[-0.0, 0.0], &[1.0, 0.0]), Some(0.5));
        // One class only: undefined.
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]), None);
        assert_eq!(auc(&[], &[]), None);
    }

    #[test]
    fn auc_equals_the_pair_count_with_many_ties() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for n in [2, 3, 10, 101, 500] {
            let scores: Vec<f32> = (0..n).map(|_| (next() % 7) as f32 / 7.0).collect();
            let labels: Vec<f32> = (0..n)
                .map(|i| {
                    if i == 0 {
                        1.0
                    } else if i == 1 {
                        0.0
                    } else {
                        (next() % 2) as f32
                    }
                })
                .collect();
            let got = auc(&scores, &labels).unwrap();
            let want = auc_by_pairs(&scores, &labels);
            assert!((got - want).abs() < 1e-12, "n {n}: {got} vs {want}");
        }
    }

    #[test]
    #[should_panic(expected = "auc: a score is NaN")]
    fn auc_refuses_nan_scores() {
        auc(&[0.1, f32::NAN], &[0.0, 1.0]);
    }

    #[test]
    fn log_loss_of_hand_computed_cases() {
        // -(ln 0.8 + ln 0.7)/2 = (0.22314355 + 0.35667494)/2
        let got = log_loss(&[0.8, 0.3], &[1.0, 0.0]);
        assert!((got - 0.289_909_25).abs() < 1e-7, "{got}");
        // A certain mistake is clipped: -ln(1e-15) = 34.538776.
        assert!((log_loss(&[0.0], &[1.0]) - 34.538_776_394).abs() < 1e-6);
        assert_eq!(log_loss(&[], &[]), 0.0);
        // From logits: σ(0) = ½ costs ln 2; σ(ln 4) = 0.8 costs -ln 0.8 for a positive.
        let got = log_loss_with_logits(&[0.0, 4f32.ln()], &[0.0, 1.0]);
        assert!(
            (got - (2f64.ln() + 0.223_143_551) / 2.0).abs() < 1e-7,
            "{got}"
        );
        // Large logits stay finite and exact: a logit of -100 for a positive costs 100.
        assert!((log_loss_with_logits(&[-100.0], &[1.0]) - 100.0).abs() < 1e-9);
    }
}
