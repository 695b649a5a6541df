"""One optimizer step on one 10M-parameter tensor: agdlab against PyTorch, in one run.

Machines here are shared and noisy, so the two frameworks are timed back to back,
alternating, and the script reports same-run ratios rather than bare times:

    pip install torch numpy
    python3 benches/pytorch_optim.py                    # 1 and 2 threads, 3 rounds
    python3 benches/pytorch_optim.py --threads 2 --rounds 5 --numel 10000000

agdlab's side is `cargo bench --bench optimizer_step` (AGD, Adam, SGD with momentum and a
plain copy of the same bytes). PyTorch's side is `torch.optim.Adam(fused=True)` (its
fastest CPU Adam) and the authors' AGD as they published it (the first public AGD, in the
dlrover repository): one tensor op at a time, with the mode switch done by `numpy.where`
on the CPU. Medians of `--reps` steps each, after a warm-up step.
"""

import argparse
import os
import statistics
import subprocess
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AuthorsAGD(torch.optim.Optimizer):
    """The authors' AGD step, operation for operation (no weight decay, no options)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), delta=1e-5):
        super().__init__(params, dict(lr=lr, betas=betas, delta=delta))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m, b = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]
                m_old = m.detach().clone()
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                bc1_old, bc1, bc2 = 1 - beta1 ** (t - 1), 1 - beta1**t, 1 - beta2**t
                s = m / bc1
                if t > 1:
                    s -= m_old / bc1_old
                b.mul_(beta2).addcmul_(s, s, value=1 - beta2)
                denom = b.sqrt()
                delta_adjust = group["delta"] * np.sqrt(bc2)
                denom = np.where(denom > delta_adjust, denom, delta_adjust)  # as published, on CPU
                lr_adjust = group["lr"] * np.sqrt(bc2) / bc1
                p.addcdiv_(m, torch.as_tensor(denom), value=-lr_adjust)


def time_steps(optimizer, reps):
    optimizer.step()  # warm up: state allocation
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_times(numel, threads, reps):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    out = {}
    for name, make in [
        ("fused_adam", lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True)),
        ("authors_agd", lambda ps: AuthorsAGD(ps, lr=1e-3)),
    ]:
        p = torch.nn.Parameter(torch.randn(numel, generator=gen) * 0.05)
        p.grad = torch.randn(numel, generator=gen) * 1e-3
        out[name] = time_steps(make([p]), reps if name != "authors_agd" else max(3, reps // 5))
    return out


def agdlab_times(numel, threads, reps):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = ["cargo", "bench", "-q", "--bench", "optimizer_step", "--", "--numel", str(numel), "--reps", str(reps)]
    lines = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.splitlines()
    out = {}
    for line in lines:
        fields = line.split()
        if len(fields) == 6:
            out[fields[0]] = float(fields[3]) / 1e3
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--numel", type=int, default=10_000_000)
    args = parser.parse_args()
    subprocess.run(["cargo", "bench", "--bench", "optimizer_step", "--no-run", "-q"], cwd=ROOT, check=True)
    print(f"torch {torch.__version__}, {args.numel} parameters, median of {args.reps} steps per round")
    for threads in args.threads:
        ratios = {"agd_vs_fused_adam": [], "adam_vs_fused_adam": [], "authors_agd_vs_agd": [], "agd_vs_copy": []}
        for _ in range(args.rounds):
            ours = agdlab_times(args.numel, threads, args.reps)
            theirs = torch_times(args.numel, threads, args.reps)
            ratios["agd_vs_fused_adam"].append(ours["agd"] / theirs["fused_adam"])
            ratios["adam_vs_fused_adam"].append(ours["adam"] / theirs["fused_adam"])
            ratios["authors_agd_vs_agd"].append(theirs["authors_agd"] / ours["agd"])
            ratios["agd_vs_copy"].append(ours["agd"] / ours["copy"])
            print(
                f"  {threads} thread(s): agdlab agd {ours['agd'] * 1e3:.2f} ms, adam {ours['adam'] * 1e3:.2f} ms, "
                f"copy {ours['copy'] * 1e3:.2f} ms | torch fused adam {theirs['fused_adam'] * 1e3:.2f} ms, "
                f"authors' agd {theirs['authors_agd'] * 1e3:.1f} ms"
            )
        summary = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in ratios.items())
        print(f"{threads} thread(s), median ratios: {summary}")


if __name__ == "__main__":
    main()
