"""What the PyTorch comparison scripts share: AGD written from the paper's equations
(PyTorch has none), and running one criterion benchmark of agdlab for its median time.

Each script puts this directory on `sys.path` and imports from here.
"""

import json
import os
import subprocess

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AGD(torch.optim.Optimizer):
    """AGD (Yue et al., NeurIPS 2023) from the paper's equations, no options."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.999), delta=1e-5):
        super().__init__(params, dict(lr=lr, betas=betas, delta=delta))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["b"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, b = state["step"], state["m"], state["b"]
                bc1, bc1_old, bc2 = 1 - b1**t, 1 - b1 ** (t - 1), 1 - b2**t
                m_old_corrected = m / bc1_old if t > 1 else torch.zeros_like(m)
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                s = m / bc1 - m_old_corrected
                b.mul_(b2).addcmul_(s, s, value=1 - b2)
                denom = b.sqrt().clamp_(min=group["delta"] * bc2**0.5)
                p.addcdiv_(m, denom, value=-group["lr"] * bc2**0.5 / bc1)


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
