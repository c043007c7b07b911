#!/usr/bin/env bash
# Nightly retraining: train a new model into a dated run directory, then
# promote it to the serving folder only if it scores better there.
#
# Usage: scripts/nightly.sh CONFIG SERVING_DIR PROMOTION_INPUT [RUNS_DIR]
#   CONFIG           pairtrain config naming the train (and eval) inputs
#   SERVING_DIR      folder of numbered model versions that serving reads
#   PROMOTION_INPUT  labelled file both models are scored on; keep it fixed
#                    and out of the training data so scores stay comparable
#   RUNS_DIR         where dated run directories go (default: runs/nightly)
# Environment: PAIRTRAIN, the command to run (default .venv/bin/pairtrain;
# split on spaces), METRIC (default auc),
# MIN_IMPROVEMENT (default 0).
set -euo pipefail

if [ "$#" -lt 3 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
config=$1
serving=$2
promotion_input=$3
runs=${4:-runs/nightly}
pairtrain=${PAIRTRAIN:-.venv/bin/pairtrain}
run_dir="$runs/$(date -u +%Y%m%dT%H%M%SZ)"

echo "nightly: training into $run_dir" >&2
$pairtrain run --config "$config" --output "$run_dir"
echo "nightly: comparing with $serving on $promotion_input" >&2
$pairtrain promote --candidate "$run_dir/model" --serving "$serving" --input "$promotion_input" \
    --metric "${METRIC:-auc}" --min_improvement "${MIN_IMPROVEMENT:-0}"
