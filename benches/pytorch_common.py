"""What the PyTorch comparison scripts share: AGD written from the paper's equations
(PyTorch has none), and running one criterion benchmark of agdlab for its median time.

Each script puts this directory on `sys.path` and imports from here.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TwoMoments(torch.optim.Optimizer):
    """An optimizer with two moment buffers per parameter (`m`, `v`) and a step count:
    `step()` keeps the state and calls `self.update(p, group, t, m, v)` per parameter."""

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                self.update(p, group, state["step"], state["m"], state["v"])


class AGD(TwoMoments):
    """AGD (Yue et al., NeurIPS 2023) from the paper's equations; the one option is
    decoupled weight decay (per group, as `weight_decay` in a parameter group)."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.999), delta=1e-5, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, delta=delta, weight_decay=weight_decay))

    @staticmethod
    def update(p, group, t, m, b):
        b1, b2 = group["betas"]
        bc1, bc1_old, bc2 = 1 - b1**t, 1 - b1 ** (t - 1), 1 - b2**t
        m_old_corrected = m / bc1_old if t > 1 else torch.zeros_like(m)
        m.mul_(b1).add_(p.grad, alpha=1 - b1)
        s = m / bc1 - m_old_corrected
        b.mul_(b2).addcmul_(s, s, value=1 - b2)
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        denom = b.sqrt().clamp_(min=group["delta"] * bc2**0.5)
        p.addcdiv_(m, denom, value=-group["lr"] * bc2**0.5 / bc1)


class AdaBelief(TwoMoments):
    """AdaBelief (Zhuang et al., NeurIPS 2020) from its equations, as agdlab's
    `AdaBelief` implements it (adabelief-pytorch 0.2 with rectify=False, eps 1e-16,
    decoupled weight decay): the second moment tracks (g - m)^2 + eps."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @staticmethod
    def update(p, group, t, m, s):
        b1, b2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        if group["weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])
        m.mul_(b1).add_(p.grad, alpha=1 - b1)
        belief = p.grad - m
        s.mul_(b2).addcmul_(belief, belief, value=1 - b2).add_(eps)
        denom = (s.sqrt() / (1 - b2**t) ** 0.5).add_(eps)
        p.addcdiv_(m, denom, value=-lr / (1 - b1**t))


def make_optimizer(name, params, lr, delta=1e-5, momentum=0.0):
    """The optimizer `name` (agd, sgd, adam, adamw, adabelief, radam) at learning rate
    `lr` (AGD with `delta`, SGD with `momentum`), with the defaults agdlab's examples use
    (AdamW: weight decay 1e-2)."""
    return {
        "agd": lambda: AGD(params, lr=lr, delta=delta),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=momentum),
        "adam": lambda: torch.optim.Adam(params, lr=lr),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
        "adabelief": lambda: AdaBelief(params, lr=lr),
        "radam": lambda: torch.optim.RAdam(params, lr=lr),
    }[name]()


class TransformerLm(torch.nn.Module):
    """examples/ptb_transformer.rs's model in PyTorch modules: token + learned position
    embeddings with dropout, pre-LN encoder layers (GELU, causal), a final LayerNorm and
    an untied head; logits [batch·len, vocab]. Both embedding tables start from
    N(0, embedding_std²) (GPT-2's 0.02, the example's `--embedding-std` default)."""

    def __init__(self, vocab, dim, heads, layers, window, dropout, embedding_std=0.02):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, dim)
        self.positions = torch.nn.Parameter(torch.randn(window, dim))
        with torch.no_grad():
            self.embedding.weight.mul_(embedding_std)
            self.positions.mul_(embedding_std)
        self.drop = torch.nn.Dropout(dropout)
        self.blocks = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu",
                                             batch_first=True, norm_first=True)
            for _ in range(layers))
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, vocab)

    def forward(self, ids):
        length = ids.shape[1]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(length)
        x = self.drop(self.embedding(ids) + self.positions[:length])
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x)).reshape(-1, self.head.out_features)


def build_bench(bench):
    """Build `benches/<bench>.rs` (cargo bench --no-run) and return its executable's path."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", bench, "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == bench:
            if message.get("executable"):
                return message["executable"]
    raise RuntimeError(f"cargo did not report the {bench} bench executable")


def criterion_median_seconds(binary, group, name, threads, criterion_home):
    """Median time of one iteration from a short criterion run of `group/name`, with
    RAYON_NUM_THREADS set to `threads`."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), CRITERION_HOME=criterion_home)
    subprocess.run(
        [binary, "--bench", f"^{group}/{name}$", "--noplot", "--sample-size", "10",
         "--warm-up-time", "1", "--measurement-time", "5"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )
    path = os.path.join(criterion_home, group, name, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] * 1e-9


def median_step_seconds(step, steps):
    """Median wall time of `step()` over `steps` calls, after 2 warm-up calls."""
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_steps(description, bench, add_flags=None):
    """Parse the step scripts' flags (--threads, --rounds, --steps, and any that
    `add_flags(parser)` adds) and build `benches/<bench>.rs`; returns its executable and
    the flags."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="PyTorch steps timed per round")
    if add_flags:
        add_flags(parser)
    args = parser.parse_args()
    binary = build_bench(bench)
    return binary, args


def alternate_rounds(binary, group, name, torch_step_seconds, args):
    """Per thread count, alternate PyTorch (`torch_step_seconds(steps)`) and agdlab
    (criterion's `group/name`) for --rounds rounds, and print both medians and the median
    of the per-round ratios agdlab / PyTorch (below 1: agdlab is faster)."""
    print(f"{'threads':>7} {'pytorch ms':>11} {'agdlab ms':>10} {'agdlab/pytorch (median of rounds)':>34}")
    with tempfile.TemporaryDirectory() as criterion_home:
        for threads in args.threads:
            torch.set_num_threads(threads)
            theirs, ours, ratios = [], [], []
            for _ in range(args.rounds):  # alternate so both see the same machine load
                t = torch_step_seconds(args.steps)
                o = criterion_median_seconds(binary, group, name, threads, criterion_home)
                theirs.append(t)
                ours.append(o)
                ratios.append(o / t)
            per_round = " ".join(f"{r:.2f}" for r in ratios)
            print(f"{threads:>7} {statistics.median(theirs) * 1e3:>11.1f} {statistics.median(ours) * 1e3:>10.1f} "
                  f"{statistics.median(ratios):>8.2f}  (rounds: {per_round})", flush=True)
