#!/usr/bin/env bash
# Publish a comparison task's results under docs/study/TASK/: redraw the table and the
# pictures over the runs finished so far in runs/compare/TASK/ (the runner's
# `--report-only`, which runs nothing), then copy them and every finished run's
# metrics and diagnostics CSVs beside them. A later machine resumes from those CSVs:
#   mkdir -p runs/compare/TASK && cp docs/study/TASK/runs/*.csv runs/compare/TASK/
#
#   scripts/publish_study.sh TASK EPOCHS [OPTIMIZERS] [SEEDS]
#   scripts/publish_study.sh ptb-transformer 3 agd,adam,adamw,sgd,adabelief,radam
#   scripts/publish_study.sh ptb-lstm 3
#
# EPOCHS is the task's full budget: a run counts as finished when its metrics CSV has
# that many epoch rows (a run cut short has fewer, and is left out).
set -euo pipefail

task=${1:?usage: scripts/publish_study.sh TASK EPOCHS [OPTIMIZERS] [SEEDS]}
epochs=${2:?usage: scripts/publish_study.sh TASK EPOCHS [OPTIMIZERS] [SEEDS]}
optimizers=${3:-agd,adam,adamw,sgd}
seeds=${4:-3}
runs=runs/compare/$task
out=docs/study/$task

if [ ! -d "$runs" ]; then
    echo "publish_study: no runs in $runs (run the comparison first, from the repository root)" >&2
    exit 1
fi
cargo run --release --example compare -- --task "$task" --report-only --threads 1 \
    --optimizers "$optimizers" --seeds "$seeds"
mkdir -p "$out/runs"
cp "$runs/results.md" "$out/"
cp "$runs"/*.svg "$out/"
published=0
for metrics in "$runs"/*_seed[0-9]*.csv; do
    case $metrics in *_diagnostics.csv) continue ;; esac
    rows=$(($(wc -l < "$metrics") - 1))
    if [ "$rows" -lt "$epochs" ]; then
        echo "publish_study: $metrics has $rows of $epochs epochs, not published"
        continue
    fi
    cp "$metrics" "$out/runs/"
    diagnostics=${metrics%.csv}_diagnostics.csv
    if [ -f "$diagnostics" ]; then cp "$diagnostics" "$out/runs/"; fi
    published=$((published + 1))
done
echo "publish_study: $out/ has the table, the pictures and $published finished runs"
