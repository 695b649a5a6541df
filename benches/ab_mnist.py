"""A/B of the MNIST example between two builds: epoch times, alternating, one run.

Build the old side from an earlier commit (for example
`git worktree add /tmp/before 8eaa5d8 && cd /tmp/before && cargo build --release --example mnist_agd`),
then:

    python3 benches/ab_mnist.py OLD_BINARY NEW_BINARY [--rounds 5] [--epochs 3]

Each round runs the old binary, then the new one, for `--epochs` epochs at each thread
count, and takes the ratio of their summed `epoch_seconds` (read from the metrics CSVs).
The script prints the median ratio new/old per thread count (below 1: the new build is
faster) and each round's ratio, so the noise of a shared machine shows.
"""

import argparse
import csv
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def epoch_seconds(binary, epochs, threads, metrics):
    subprocess.run([binary, "--epochs", str(epochs), "--threads", str(threads), "--metrics", metrics],
                   capture_output=True, cwd=ROOT, check=True)
    with open(metrics) as f:
        return [float(row["epoch_seconds"]) for row in csv.DictReader(f)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            ratios = []
            for _ in range(args.rounds):
                old = epoch_seconds(args.old, args.epochs, threads, os.path.join(tmp, "old.csv"))
                new = epoch_seconds(args.new, args.epochs, threads, os.path.join(tmp, "new.csv"))
                ratios.append(sum(new) / sum(old))
            rounds = " ".join(f"{r:.3f}" for r in ratios)
            print(f"{threads} thread(s): new/old epoch time, median {statistics.median(ratios):.3f} (rounds: {rounds})",
                  flush=True)


if __name__ == "__main__":
    main()
