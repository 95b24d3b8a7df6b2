#!/usr/bin/env bash
# Synthetic training (issue 16) on a CUDA machine for at most MINUTES (default 8) of training, with the same configs
# as on the CPU (train.json + train_synth.json), starting from the checkpoints in RUN_DIR when there are any and
# otherwise from the committed weights (bundle/models/model.pt); the weights, the checkpoints and the logs are copied
# to $OUT (the device tool brings that folder back).
#
#   OUT=/tmp/out bash bundle/scripts/gpu_train.sh [MINUTES] [RUN_DIR]     # default RUN_DIR: avsm_runs/synth
#
# Run from the repository root. Without CUDA it says so and exits 3 (nothing is trained: the CPU run is the same
# config without this script).
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
MINUTES="${1:-8}"
RUN_DIR="${2:-avsm_runs/synth}"
OUT="${OUT:-gpu_train_out}"
mkdir -p "$OUT"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_train.sh: no CUDA on this machine (torch.cuda.is_available() is False); nothing trained." | tee "$OUT/summary.txt"
    exit 3
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/summary.txt"
START=$(date +%s)
# the time limit is the config's (ignite TimeLimit, the run ends cleanly and saves its final model); the outer
# timeout only guards against a hang
timeout --signal=INT --kill-after=20 $((MINUTES * 60 + 120)) \
    "$PY" -m monai.bundle run training \
    --config_file "['bundle/configs/train.json','bundle/configs/train_synth.json']" \
    --output_dir "$RUN_DIR" --max_train_seconds $((MINUTES * 60)) --num_workers 4 \
    2>&1 | tee "$OUT/train_log.txt" | grep -E "Epoch\[|training finished|Error|error" || true
echo "wall time $(( $(date +%s) - START )) s" | tee -a "$OUT/summary.txt"
mkdir -p "$OUT/checkpoints"
cp -r "$RUN_DIR"/checkpoints/. "$OUT/checkpoints/" 2>/dev/null || true
cp "$RUN_DIR"/events.out.tfevents.* "$OUT/" 2>/dev/null || true
ls -la "$OUT/checkpoints" | tee -a "$OUT/summary.txt"
