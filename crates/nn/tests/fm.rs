//! The factorization machine: its pairwise op against an O(n²) reference and finite
//! differences on several layouts, the whole model against PyTorch (logits and
//! gradients, plain, with numeric values, and with a DeepFM head), row-sparse table
//! gradients, and a tiny FM that must learn an interaction a linear model cannot.
//!
//! The PyTorch values were printed by this script (torch 2.15):
//!
//! ```text
//! class FM(torch.nn.Module):
//!     def __init__(self, table_size, dim, hidden=None, fields=3):
//!         super().__init__()
//!         self.bias = torch.nn.Parameter(torch.zeros(1))
//!         self.table = torch.nn.Embedding(table_size, 1 + dim)
//!         self.mlp = torch.nn.Sequential(torch.nn.Linear(fields * dim, hidden), torch.nn.ReLU(),
//!                                        torch.nn.Linear(hidden, 1)) if hidden else None
//!     def forward(self, ids, x=None):
//!         rows = self.table(ids)
//!         w, e = rows[..., 0], rows[..., 1:]
//!         if x is not None:
//!             w, e = w * x, e * x.unsqueeze(2)
//!         pairs = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
//!         out = self.bias + w.sum(1) + pairs
//!         if self.mlp is not None:
//!             out = out + self.mlp(e.flatten(1)).squeeze(1)
//!         return out
//! def fill(m):
//!     with torch.no_grad():
//!         m.bias.fill_(0.1)
//!         m.table.weight[:, 0] = torch.arange(7.) / 10 - 0.3
//!         m.table.weight[:, 1:] = torch.sin(torch.arange(28.) * 0.7).reshape(7, 4) * 0.5
//!         if m.mlp is not None:
//!             m.mlp[0].weight.copy_(torch.cos(torch.arange(60.) * 0.3).reshape(5, 12) * 0.2)
//!             m.mlp[0].bias.copy_(torch.linspace(-0.2, 0.2, 5))
//!             m.mlp[2].weight.copy_(torch.linspace(-0.5, 0.5, 5).reshape(1, 5))
//!             m.mlp[2].bias.fill_(0.05)
//! ids = torch.tensor([[0, 3, 5], [2, 3, 6], [1, 1, 4]])
//! x = torch.tensor([[1.0, 0.5, 2.0], [-1.0, 1.5, 0.25], [0.5, 2.0, 1.0]])
//! y = torch.tensor([1.0, 0.0, 1.0])
//! for name, hidden, values in [("plain", None, None), ("values", None, x), ("deep", 5, None)]:
//!     m = FM(7, 4, hidden); fill(m)
//!     logits = m(ids, values)
//!     torch.nn.functional.binary_cross_entropy_with_logits(logits, y).backward()
//!     print(name, "logits", logits.tolist())
//!     print(name, "w", m.table.weight.grad[:, 0].tolist())
//!     print(name, "v", m.table.weight.grad[:, 1:].flatten().tolist())
//!     for n, p in m.named_parameters():
//!         print(name, n, p.grad.flatten().tolist())
//! ```

// `&[x.clone()]` reads better than `std::slice::from_ref(&x)` next to the other calls;
// PyTorch's values are pasted as it printed them (f64 digits of f32 numbers).
#![allow(clippy::cloned_ref_to_slice_refs, clippy::excessive_precision)]

use agdlab_autograd::{check_gradients, GradCheck, Param, Tape, Var};
use agdlab_nn::{bce_with_logits, fm_interactions, FactorizationMachine, FmConfig, Module};
use agdlab_optim::{Adam, AdamConfig, Optimizer, ParamGroup, SparseMode};
use agdlab_tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// `Σ_{i<j} <e_i, e_j>` per example, the O(F²·k) definition, in f64.
fn pairwise_reference(e: &Tensor) -> Vec<f64> {
    let (batch, fields, dim) = (e.shape()[0], e.shape()[1], e.shape()[2]);
    (0..batch)
        .map(|b| {
            let mut total = 0.0f64;
            for i in 0..fields {
                for j in i + 1..fields {
                    for c in 0..dim {
                        total += e.get(&[b, i, c]) as f64 * e.get(&[b, j, c]) as f64;
                    }
                }
            }
            total
        })
        .collect()
}

/// Values `[batch, fields, dim]` as a contiguous tensor and as strided views: read in
/// place (rows narrowed out of wider ones, one example broadcast) or copied first
/// (the last dimension not contiguous).
fn layouts(batch: usize, fields: usize, dim: usize, seed: u64) -> Vec<(&'static str, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = Tensor::normal(&[batch, fields, dim], 0.0, 1.0, &mut rng);
    let permuted = base.permute(&[2, 0, 1]).contiguous().permute(&[1, 2, 0]); // dim-major storage
    let transposed = base.transpose(1, 2).contiguous().transpose(1, 2); // fields innermost
    let padded = Tensor::concat(&[&base, &Tensor::zeros(&[batch, fields, 3])], 2).narrow(2, 0, dim);
    let broadcast =
        Tensor::normal(&[1, fields, dim], 0.0, 1.0, &mut rng).broadcast_to(&[batch, fields, dim]);
    vec![
        ("contiguous", base),
        ("permuted", permuted),
        ("transposed", transposed),
        ("narrowed", padded),
        ("broadcast", broadcast),
    ]
}

#[test]
fn fm_interactions_equal_the_sum_over_pairs_on_every_layout() {
    for (batch, fields, dim) in [(5, 39, 16), (3, 1, 4), (2, 7, 1), (4, 5, 0)] {
        for (layout, e) in layouts(batch, fields, dim, 1) {
            let got = fm_interactions(&Var::constant(e.clone())).value().to_vec();
            let want = pairwise_reference(&e);
            assert_eq!(got.len(), batch);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "[{batch}, {fields}, {dim}] {layout}: {got:?} vs the pair sum {want:?}"
                );
            }
        }
    }
}

#[test]
fn fm_interactions_backward_matches_finite_differences_on_every_layout() {
    for (layout, e) in layouts(3, 4, 5, 2)
        .into_iter()
        .filter(|(layout, _)| *layout != "broadcast")
    {
        check_gradients(
            |v| fm_interactions(&v[0]),
            &[e.clone()],
            &GradCheck::default(),
        )
        .unwrap_or_else(|m| panic!("{layout}: {m}"));
    }
    // A stride-0 view is read in place; broadcast inside the function, so that the
    // check perturbs one element of the leaf rather than one shared by three examples.
    let one = Tensor::normal(&[1, 4, 5], 0.0, 1.0, &mut StdRng::seed_from_u64(3));
    check_gradients(
        |v| fm_interactions(&v[0].broadcast_to(&[3, 4, 5])),
        &[one],
        &GradCheck::default(),
    )
    .unwrap_or_else(|m| panic!("broadcast: {m}"));
}

/// The test model: a table of 7 rows, 3 fields, dimension 4, filled as `fill` does.
fn torch_filled(hidden: Option<usize>) -> FactorizationMachine {
    let config = FmConfig {
        mlp_hidden: hidden.into_iter().collect(),
        ..FmConfig::new(7, 3, 4)
    };
    let model = FactorizationMachine::new(&config, &mut StdRng::seed_from_u64(0));
    let f = |values: Vec<f32>, shape: &[usize]| Tensor::from_vec(values, shape).unwrap();
    model.bias.set(f(vec![0.1], &[1])).unwrap();
    let table = (0..7).flat_map(|r| {
        std::iter::once(r as f32 / 10.0 - 0.3)
            .chain((0..4).map(move |c| ((4 * r + c) as f32 * 0.7).sin() * 0.5))
    });
    model.table.set(f(table.collect(), &[7, 5])).unwrap();
    if hidden.is_some() {
        let linspace = |a: f32, b: f32, n: usize| {
            (0..n)
                .map(|i| a + (b - a) * i as f32 / (n - 1) as f32)
                .collect()
        };
        let params = model.named_parameters();
        let set = |name: &str, t: Tensor| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .set(t)
                .unwrap()
        };
        set(
            "mlp.0.weight",
            f(
                (0..60).map(|i| (i as f32 * 0.3).cos() * 0.2).collect(),
                &[5, 12],
            ),
        );
        set("mlp.0.bias", f(linspace(-0.2, 0.2, 5), &[5]));
        set("mlp.2.weight", f(linspace(-0.5, 0.5, 5), &[1, 5]));
        set("mlp.2.bias", f(vec![0.05], &[1]));
    }
    model
}

const IDS: [usize; 9] = [0, 3, 5, 2, 3, 6, 1, 1, 4];
const VALUES: [f32; 9] = [1.0, 0.5, 2.0, -1.0, 1.5, 0.25, 0.5, 2.0, 1.0];
const LABELS: [f32; 3] = [1.0, 0.0, 1.0];

struct TorchCase {
    logits: [f32; 3],
    bias: f32,
    /// The gradient of `w` (column 0 of the table).
    w: [f32; 7],
    /// The gradient of `v` (columns 1..=4), row by row.
    v: [f32; 28],
}

const PLAIN: TorchCase = TorchCase {
    logits: [
        0.23506876826286316,
        -0.2850901484489441,
        -0.10912226140499115,
    ],
    bias: -0.17984969913959503,
    w: [
        -0.14716731011867523,
        -0.35150232911109924,
        0.14306877553462982,
        -0.00409853458404541,
        -0.17575116455554962,
        -0.14716731011867523,
        0.14306877553462982,
    ],
    v: [
        -0.1357770413160324,
        -0.08571361005306244,
        0.004662305116653442,
        0.09284546971321106,
        0.1132170706987381,
        0.17028892040252686,
        0.14727123081684113,
        0.05498950183391571,
        -0.0023583173751831055,
        -0.046964261680841446,
        -0.06948228180408478,
        -0.0593215748667717,
        -0.1815413385629654,
        -0.1782250851392746,
        -0.09108684957027435,
        0.03889106214046478,
        -0.05887456610798836,
        0.061650555580854416,
        0.15318042039871216,
        0.17266719043254852,
        -0.06288453191518784,
        -0.0708843469619751,
        -0.04554609954357147,
        0.0012131258845329285,
        0.015975944697856903,
        0.02402929961681366,
        0.02078126184642315,
        0.007759507279843092,
    ],
};

const WITH_VALUES: TorchCase = TorchCase {
    logits: [0.6778725385665894, 0.7956187725067139, -0.308910608291626],
    bias: -0.07477303594350815,
    w: [
        -0.11224541813135147,
        -0.48051610589027405,
        -0.22967882454395294,
        0.2883955240249634,
        -0.19220644235610962,
        -0.22449083626270294,
        0.057419706135988235,
    ],
    v: [
        -0.13517235219478607,
        -0.10388556122779846,
        -0.023739784955978394,
        0.067571260035038,
        0.17086844146251678,
        0.21593528985977173,
        0.15944437682628632,
        0.02796413004398346,
        -0.12173059582710266,
        -0.026957619935274124,
        0.08049408346414566,
        0.15008798241615295,
        0.014923032373189926,
        -0.11045464128255844,
        -0.18388384580612183,
        -0.17082947492599487,
        -0.08048361539840698,
        0.08427849411964417,
        0.20940306782722473,
        0.23604214191436768,
        -0.04796242713928223,
        -0.0902191698551178,
        -0.09004440158605576,
        -0.04752039536833763,
        0.05492670089006424,
        0.01325920782983303,
        -0.03464433550834656,
        -0.06625406444072723,
    ],
};

const DEEP: TorchCase = TorchCase {
    logits: [0.3658941388130188, -0.2475614994764328, 0.23950187861919403],
    bias: -0.13717292249202728,
    w: [
        -0.1365111619234085,
        -0.2936060428619385,
        0.14614126086235046,
        0.009630098938941956,
        -0.14680302143096924,
        -0.1365111619234085,
        0.14614126086235046,
    ],
    v: [
        -0.12461923062801361,
        -0.08021868765354156,
        0.0016389116644859314,
        0.08170246332883835,
        0.1129780113697052,
        0.16448411345481873,
        0.14710530638694763,
        0.06971903145313263,
        -0.022240079939365387,
        -0.06897047162055969,
        -0.09126292914152145,
        -0.07836254686117172,
        -0.19801485538482666,
        -0.18667413294315338,
        -0.09322003275156021,
        0.04061805456876755,
        -0.04241439700126648,
        0.05410631746053696,
        0.1261744201183319,
        0.13822433352470398,
        -0.06383176147937775,
        -0.06981238722801208,
        -0.04450617730617523,
        0.000871662050485611,
        0.026251643896102905,
        0.03950616717338562,
        0.039880216121673584,
        0.02860443666577339,
    ],
};

/// PyTorch's `mlp.2.weight` gradient in the DeepFM case.
const DEEP_MLP2_WEIGHT: [f32; 5] = [
    0.02172267995774746,
    0.0,
    -0.017949024215340614,
    -0.038865696638822556,
    -0.072234608232975,
];

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 2e-6, "{what}: {got:?}\nPyTorch: {want:?}");
    }
}

#[test]
fn logits_and_gradients_match_pytorch() {
    let cases = [
        ("plain", None, None, PLAIN),
        ("values", None, Some(VALUES), WITH_VALUES),
        ("deep", Some(5), None, DEEP),
    ];
    for (name, hidden, values, want) in cases {
        let model = torch_filled(hidden);
        let tape = Tape::new();
        let values = values.map(|v| Tensor::from_vec(v.to_vec(), &[3, 3]).unwrap());
        let logits = model.forward(&tape, &IDS, values.as_ref());
        assert_close(
            &format!("{name} logits"),
            &logits.value().to_vec(),
            &want.logits,
        );
        let loss = bce_with_logits(&logits, &Tensor::from_vec(LABELS.to_vec(), &[3]).unwrap());
        let grads = loss.backward();
        assert_close(
            &format!("{name} bias"),
            &grads.dense(&model.bias).unwrap().to_vec(),
            &[want.bias],
        );
        let grad = grads.get(&model.table).unwrap();
        let rows = grad
            .as_row_sparse()
            .unwrap_or_else(|| panic!("{name}: the table's gradient is not row-sparse"));
        assert_eq!(
            rows.rows(),
            &[0, 1, 2, 3, 4, 5, 6],
            "{name}: sorted, each row once"
        );
        let table = grad.to_dense();
        assert_close(
            &format!("{name} w"),
            &table.narrow(1, 0, 1).to_vec(),
            &want.w,
        );
        assert_close(
            &format!("{name} v"),
            &table.narrow(1, 1, 4).to_vec(),
            &want.v,
        );
        if hidden.is_some() {
            let params = model.named_parameters();
            let mlp2 = &params.iter().find(|(n, _)| n == "mlp.2.weight").unwrap().1;
            assert_close(
                "deep mlp.2.weight",
                &grads.dense(mlp2).unwrap().to_vec(),
                &DEEP_MLP2_WEIGHT,
            );
        }
    }
}

#[test]
fn table_gradients_hold_only_the_rows_used() {
    let model =
        FactorizationMachine::new(&FmConfig::new(1 << 16, 3, 8), &mut StdRng::seed_from_u64(1));
    let ids = [7, 40_000, 9, 7, 123, 65_535];
    let tape = Tape::new();
    let grads = model.forward(&tape, &ids, None).sum_all().backward();
    let rows = grads
        .get(&model.table)
        .unwrap()
        .as_row_sparse()
        .expect("row-sparse");
    assert_eq!(rows.rows(), &[7, 9, 123, 40_000, 65_535]);
    assert_eq!(
        rows.values().shape(),
        &[5, 9],
        "one value row per distinct id, not the table"
    );
}

#[test]
fn names_shapes_and_initialisation_follow_the_config() {
    let config = FmConfig {
        mlp_hidden: vec![8, 4],
        ..FmConfig::new(100, 5, 6)
    };
    let model = FactorizationMachine::new(&config, &mut StdRng::seed_from_u64(2));
    let params = model.named_parameters();
    let shapes: Vec<(&str, Vec<usize>)> = params
        .iter()
        .map(|(n, p)| (n.as_str(), p.shape()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("bias", vec![1]),
            ("table.weight", vec![100, 7]),
            ("mlp.0.weight", vec![8, 30]),
            ("mlp.0.bias", vec![8]),
            ("mlp.2.weight", vec![4, 8]),
            ("mlp.2.bias", vec![4]),
            ("mlp.4.weight", vec![1, 4]),
            ("mlp.4.bias", vec![1]),
        ]
    );
    let table = model.table.value();
    assert!(
        table.narrow(1, 0, 1).to_vec().iter().all(|&w| w == 0.0),
        "w starts at 0"
    );
    let v = table.narrow(1, 1, 6).to_vec();
    let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    assert!((std - 0.01).abs() < 0.002, "factor std {std}");
    // Evaluation records nothing.
    let logits = model.forward(&Tape::no_grad(), &[0; 10], None);
    assert_eq!(logits.shape(), &[2]);
    assert!(!logits.requires_grad());
}

#[test]
#[should_panic(expected = "not a whole number of examples of 3 fields")]
fn ids_must_fill_whole_examples() {
    let model = FactorizationMachine::new(&FmConfig::new(10, 3, 2), &mut StdRng::seed_from_u64(0));
    model.forward(&Tape::new(), &[1, 2, 3, 4], None);
}

#[test]
#[should_panic(expected = "id 10 out of range for a table of 10 rows")]
fn ids_must_be_rows_of_the_table() {
    let model = FactorizationMachine::new(&FmConfig::new(10, 2, 2), &mut StdRng::seed_from_u64(0));
    model.forward(&Tape::new(), &[1, 10], None);
}

/// Two fields of two values each; the label is 1 when the two agree. No sum of
/// per-feature weights separates this (it is XOR), but one pairwise factor does.
#[test]
fn a_tiny_fm_learns_an_interaction_a_linear_model_cannot() {
    for sparse in [SparseMode::Dense, SparseMode::Lazy] {
        let model = FactorizationMachine::new(
            &FmConfig {
                init_std: 0.1,
                ..FmConfig::new(4, 2, 2)
            },
            &mut StdRng::seed_from_u64(3),
        );
        let group = ParamGroup::new(model.named_parameters()).sparse(sparse);
        let mut opt = Adam::with_groups(
            vec![group],
            AdamConfig {
                lr: 0.05,
                ..Default::default()
            },
        )
        .unwrap();
        // Field 0 uses rows 0 and 1, field 1 rows 2 and 3.
        let ids = [0, 2, 0, 3, 1, 2, 1, 3];
        let labels = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[4]).unwrap();
        let loss_at = |model: &FactorizationMachine| {
            bce_with_logits(&model.forward(&Tape::no_grad(), &ids, None), &labels).item()
        };
        let first = loss_at(&model);
        for _ in 0..300 {
            let tape = Tape::new();
            let grads = bce_with_logits(&model.forward(&tape, &ids, None), &labels).backward();
            opt.step(&grads).unwrap();
        }
        let last = loss_at(&model);
        assert!(
            last < 0.05 && first > 0.6,
            "{sparse:?}: loss {first} -> {last}"
        );
        let logits = model.forward(&Tape::no_grad(), &ids, None).value().to_vec();
        assert!(
            logits[0] > 0.0 && logits[1] < 0.0 && logits[2] < 0.0 && logits[3] > 0.0,
            "{logits:?}"
        );
    }
}

#[test]
fn the_optimizer_updates_the_table_in_place_after_backward() {
    // After backward no tensor saved by the ops shares the table's storage, so the step
    // writes into it in place; a shared buffer would be copied first (64 MB for a
    // 2^20 x 17 table).
    let model =
        FactorizationMachine::new(&FmConfig::new(1000, 3, 4), &mut StdRng::seed_from_u64(4));
    let storage = |p: &Param| p.value().storage().as_ptr() as usize;
    let before = storage(&model.table);
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::default()).unwrap();
    let tape = Tape::new();
    let grads = model.forward(&tape, &[1, 2, 3], None).sum_all().backward();
    opt.step(&grads).unwrap();
    assert_eq!(storage(&model.table), before, "the table was copied");
}
