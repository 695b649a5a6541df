//! What the comparison runs: the tasks, and each optimizer's settings on each task.
//!
//! One readable table ([`RECIPES`]), one row per (task, optimizer), with a comment
//! citing where each default comes from. The flags are the shared ones of
//! [`CommonArgs`](crate::train::CommonArgs) (`--lr`, `--delta`, `--weight-decay`,
//! `--momentum`, ...) plus the example's own (`--model cnn`, `--source synthetic`).
//!
//! Sources, cited below by name:
//! - *PyTorch*: the defaults of `torch.optim` (Adam/AdamW lr 1e-3, AdamW weight decay
//!   1e-2, betas (0.9, 0.999)).
//! - *paper*: Yue et al., AGD, NeurIPS 2023 (arXiv 2312.01658), and the atorch README
//!   of its implementation: AGD's lr about 1/10 of AdamW's; δ 1e-14 for Transformers,
//!   1e-8 in the CIFAR demo, 1e-5 the optimizer's default.
//! - *example*: the learning rate the example tunes for itself (its `default_lr`).

use crate::train::Better;

/// A task: which example runs it, what decides the best epoch, and the flags of a
/// full and of a `--quick` run.
#[derive(Clone, Copy, Debug)]
pub struct TaskSpec {
    /// The name given to `compare --task`.
    pub name: &'static str,
    /// The example program (`examples/<example>.rs`).
    pub example: &'static str,
    /// Flags the example always gets for this task (`--model cnn`).
    pub flags: &'static [&'static str],
    /// The metric that decides the best epoch, as the example writes it.
    pub primary: &'static str,
    /// Which way `primary` is better.
    pub better: Better,
    /// The data set the example needs (for the messages), `None` for synthetic data.
    pub data: Option<&'static str>,
    /// Whether the example has a `--diagnostics` flag (AGD's per-layer SGD-mode fraction).
    pub diagnostics: bool,
    /// The full budget: epochs and extra flags.
    pub full: Budget,
    /// The `--quick` budget: a few minutes on 2 cores.
    pub quick: Budget,
}

/// How long a run is and on how much data.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub epochs: usize,
    /// Extra flags (a training subset, shorter evaluation).
    pub flags: &'static [&'static str],
    /// A diagnostics row every this many steps (for the layer × step heat map).
    pub diagnostics_every: usize,
}

/// One optimizer's settings on one task.
#[derive(Clone, Copy, Debug)]
pub struct Recipe {
    pub task: &'static str,
    /// As `--optimizer` takes it: agd, sgd, adam, adamw, adabelief, radam.
    pub optimizer: &'static str,
    pub lr: f32,
    /// Further shared flags (`--delta`, `--weight-decay`, `--momentum`).
    pub flags: &'static [&'static str],
}

/// The tasks, in the order of the paper's experiments.
pub const TASKS: &[TaskSpec] = &[
    TaskSpec {
        name: "mnist",
        example: "mnist_agd",
        flags: &[],
        primary: "test_acc",
        better: Better::Higher,
        data: Some("mnist"),
        diagnostics: true,
        full: Budget {
            epochs: 10,
            flags: &[],
            diagnostics_every: 25,
        },
        quick: Budget {
            epochs: 3,
            flags: &["--train-subset", "20000"],
            diagnostics_every: 4,
        },
    },
    TaskSpec {
        name: "mnist-cnn",
        example: "mnist_agd",
        flags: &["--model", "cnn"],
        primary: "test_acc",
        better: Better::Higher,
        data: Some("mnist"),
        diagnostics: true,
        full: Budget {
            epochs: 10,
            flags: &[],
            diagnostics_every: 25,
        },
        quick: Budget {
            epochs: 1,
            flags: &["--train-subset", "5000"],
            diagnostics_every: 2,
        },
    },
    TaskSpec {
        name: "fashion-resnet",
        example: "fashion_resnet",
        flags: &[],
        primary: "test_acc",
        better: Better::Higher,
        data: Some("fashion-mnist"),
        diagnostics: true,
        // The recipe: 10 epochs with a cosine schedule.
        full: Budget {
            epochs: 10,
            flags: &[],
            diagnostics_every: 50,
        },
        quick: Budget {
            epochs: 1,
            flags: &["--train-subset", "5000"],
            diagnostics_every: 2,
        },
    },
    TaskSpec {
        name: "ptb-lstm",
        example: "ptb_lstm",
        flags: &[],
        primary: "valid_ppl",
        better: Better::Lower,
        data: Some("ptb"),
        diagnostics: true,
        full: Budget {
            epochs: 3,
            flags: &[],
            diagnostics_every: 50,
        },
        quick: Budget {
            epochs: 1,
            flags: &["--train-tokens", "100000", "--eval-tokens", "20000"],
            diagnostics_every: 5,
        },
    },
    TaskSpec {
        name: "ptb-transformer",
        example: "ptb_transformer",
        flags: &[],
        primary: "valid_ppl",
        better: Better::Lower,
        data: Some("ptb"),
        diagnostics: true,
        full: Budget {
            epochs: 3,
            flags: &[],
            diagnostics_every: 50,
        },
        quick: Budget {
            epochs: 1,
            flags: &["--train-tokens", "100000", "--eval-tokens", "20000"],
            diagnostics_every: 5,
        },
    },
    TaskSpec {
        name: "movielens-fm",
        example: "fm_ctr",
        flags: &["--source", "movielens"],
        primary: "test_auc",
        better: Better::Higher,
        data: Some("movielens-100k"),
        diagnostics: false,
        // The example's defaults: 10 epochs, cosine schedule.
        full: Budget {
            epochs: 10,
            flags: &[],
            diagnostics_every: 0,
        },
        quick: Budget {
            epochs: 2,
            flags: &[],
            diagnostics_every: 0,
        },
    },
    TaskSpec {
        name: "synthetic-ctr",
        example: "fm_ctr",
        flags: &["--source", "synthetic"],
        primary: "test_auc",
        better: Better::Higher,
        data: None,
        diagnostics: false,
        // The test AUC peaks within 2-3 epochs (rare values are memorised after that).
        full: Budget {
            epochs: 5,
            flags: &[],
            diagnostics_every: 0,
        },
        quick: Budget {
            epochs: 2,
            flags: &["--synthetic-size", "50000,10000"],
            diagnostics_every: 0,
        },
    },
];

/// Each optimizer's settings per task: the six optimizers of the comparison on every
/// task. AdaBelief and RAdam run at Adam's rate on each task, as their papers compare
/// them with Adam at equal learning rates (Zhuang et al. 2020; Liu et al. 2020).
#[rustfmt::skip]
pub const RECIPES: &[Recipe] = &[
    // MNIST MLP: the example's tuned rates (examples/mnist_agd.rs `default_lr`); AGD at
    // 1/10 of Adam's (paper); AdamW's weight decay 1e-2 (PyTorch); SGD momentum 0.9.
    Recipe { task: "mnist", optimizer: "agd", lr: 1e-4, flags: &["--delta", "1e-5"] },
    Recipe { task: "mnist", optimizer: "adam", lr: 1e-3, flags: &[] },
    Recipe { task: "mnist", optimizer: "adamw", lr: 1e-3, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "mnist", optimizer: "sgd", lr: 0.1, flags: &["--momentum", "0.9"] },
    Recipe { task: "mnist", optimizer: "adabelief", lr: 1e-3, flags: &[] },
    Recipe { task: "mnist", optimizer: "radam", lr: 1e-3, flags: &[] },
    // MNIST LeNet-5: the example's tuned rates (AGD 1e-3 on the CNN, `default_lr`).
    Recipe { task: "mnist-cnn", optimizer: "agd", lr: 1e-3, flags: &["--delta", "1e-5"] },
    Recipe { task: "mnist-cnn", optimizer: "adam", lr: 1e-3, flags: &[] },
    Recipe { task: "mnist-cnn", optimizer: "adamw", lr: 1e-3, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "mnist-cnn", optimizer: "sgd", lr: 0.1, flags: &["--momentum", "0.9"] },
    Recipe { task: "mnist-cnn", optimizer: "adabelief", lr: 1e-3, flags: &[] },
    Recipe { task: "mnist-cnn", optimizer: "radam", lr: 1e-3, flags: &[] },
    // Fashion-MNIST ResNet-20, the paper's CIFAR recipe as the example sets it
    // (examples/fashion_resnet.rs `default_lr`, `default_weight_decay`): SGD lr 0.1,
    // momentum 0.9, L2 weight decay 5e-4; Adam, AdaBelief, RAdam lr 1e-3 with 5e-4;
    // AdamW lr 1e-3 and AGD lr 1e-3 with decoupled decay 1e-2; AGD's δ 1e-8 (the CIFAR
    // demo of the paper's code).
    Recipe { task: "fashion-resnet", optimizer: "agd", lr: 1e-3, flags: &["--delta", "1e-8", "--weight-decay", "1e-2"] },
    Recipe { task: "fashion-resnet", optimizer: "adam", lr: 1e-3, flags: &["--weight-decay", "5e-4"] },
    Recipe { task: "fashion-resnet", optimizer: "adamw", lr: 1e-3, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "fashion-resnet", optimizer: "sgd", lr: 0.1, flags: &["--momentum", "0.9", "--weight-decay", "5e-4"] },
    Recipe { task: "fashion-resnet", optimizer: "adabelief", lr: 1e-3, flags: &["--weight-decay", "5e-4"] },
    Recipe { task: "fashion-resnet", optimizer: "radam", lr: 1e-3, flags: &["--weight-decay", "5e-4"] },
    // PTB LSTM: the example's tuned rates (examples/ptb_lstm.rs): SGD 20 without momentum
    // (the classic Zaremba et al. recipe), Adam 2e-3, AGD 3e-4 (about 1/10 of Adam, paper).
    Recipe { task: "ptb-lstm", optimizer: "agd", lr: 3e-4, flags: &["--delta", "1e-5"] },
    Recipe { task: "ptb-lstm", optimizer: "adam", lr: 2e-3, flags: &[] },
    Recipe { task: "ptb-lstm", optimizer: "adamw", lr: 2e-3, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "ptb-lstm", optimizer: "sgd", lr: 20.0, flags: &["--momentum", "0"] },
    Recipe { task: "ptb-lstm", optimizer: "adabelief", lr: 2e-3, flags: &[] },
    Recipe { task: "ptb-lstm", optimizer: "radam", lr: 2e-3, flags: &[] },
    // PTB Transformer: AdamW 1e-3 with weight decay 1e-2 (PyTorch); AGD 3e-4 with δ 1e-14
    // (paper: δ 1e-14 for Transformers) and the same weight decay (examples/ptb_transformer.rs).
    Recipe { task: "ptb-transformer", optimizer: "agd", lr: 3e-4, flags: &["--delta", "1e-14", "--weight-decay", "1e-2"] },
    Recipe { task: "ptb-transformer", optimizer: "adam", lr: 1e-3, flags: &["--weight-decay", "0"] },
    Recipe { task: "ptb-transformer", optimizer: "adamw", lr: 1e-3, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "ptb-transformer", optimizer: "sgd", lr: 0.1, flags: &["--momentum", "0.9", "--weight-decay", "0"] },
    Recipe { task: "ptb-transformer", optimizer: "adabelief", lr: 1e-3, flags: &["--weight-decay", "0"] },
    Recipe { task: "ptb-transformer", optimizer: "radam", lr: 1e-3, flags: &["--weight-decay", "0"] },
    // FM on MovieLens: the example's tuned rates (examples/fm_ctr.rs `default_lr`, with its
    // cosine schedule over 10 epochs): AGD 1e-3, a tenth of Adam's 1e-2 (paper); SGD 2
    // with momentum 0.9; AdamW's weight decay 1e-2 (PyTorch).
    Recipe { task: "movielens-fm", optimizer: "agd", lr: 1e-3, flags: &["--delta", "1e-5"] },
    Recipe { task: "movielens-fm", optimizer: "adam", lr: 1e-2, flags: &[] },
    Recipe { task: "movielens-fm", optimizer: "adamw", lr: 1e-2, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "movielens-fm", optimizer: "sgd", lr: 2.0, flags: &["--momentum", "0.9"] },
    Recipe { task: "movielens-fm", optimizer: "adabelief", lr: 1e-2, flags: &[] },
    Recipe { task: "movielens-fm", optimizer: "radam", lr: 1e-2, flags: &[] },
    // FM on synthetic clicks: the example's smaller rates for sources that memorise rare
    // values (AGD 1e-4, Adam 1e-3, SGD 0.5).
    Recipe { task: "synthetic-ctr", optimizer: "agd", lr: 1e-4, flags: &["--delta", "1e-5"] },
    Recipe { task: "synthetic-ctr", optimizer: "adam", lr: 1e-3, flags: &[] },
    Recipe { task: "synthetic-ctr", optimizer: "adamw", lr: 1e-3, flags: &["--weight-decay", "1e-2"] },
    Recipe { task: "synthetic-ctr", optimizer: "sgd", lr: 0.5, flags: &["--momentum", "0.9"] },
    Recipe { task: "synthetic-ctr", optimizer: "adabelief", lr: 1e-3, flags: &[] },
    Recipe { task: "synthetic-ctr", optimizer: "radam", lr: 1e-3, flags: &[] },
];

/// The task called `name`.
pub fn task(name: &str) -> Option<&'static TaskSpec> {
    TASKS.iter().find(|t| t.name == name)
}

/// The recipe of `optimizer` on `task`.
pub fn recipe(task: &str, optimizer: &str) -> Option<&'static Recipe> {
    RECIPES
        .iter()
        .find(|r| r.task == task && r.optimizer == optimizer)
}

/// The optimizers the table has a recipe for on `task`, in table order.
pub fn optimizers_for(task: &str) -> Vec<&'static str> {
    RECIPES
        .iter()
        .filter(|r| r.task == task)
        .map(|r| r.optimizer)
        .collect()
}
