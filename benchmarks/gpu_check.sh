#!/usr/bin/env bash
# GPU check of monai_avsm (issue 15): the CUDA tests and the CUDA rows of every benchmark with a --device option,
# within 8 minutes on one GPU (under 5 with --quick); all tables go into one folder.
#
#   bash benchmarks/gpu_check.sh [--quick] [--out DIR]        # default DIR: gpu_check_<date>
#
# Run from the repository root (python must import monai_avsm from this tree, e.g. PYTHONPATH=$PWD). Without
# CUDA it says so, writes that into DIR/summary.md and exits 0 after checking that the scripts start (CPU smoke run of
# bench_vsvf --quick), so it can be tested on a CPU machine. Every step has its own time limit (`timeout`); a step
# that fails or runs out of time is recorded in the summary and the next step still runs.
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
QUICK=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n 2,10p "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1' (expected --quick, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done
OUT="${OUT:-gpu_check_$(date +%Y%m%d_%H%M%S)}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
START=$(date +%s)

step() {  # step NAME SECONDS COMMAND...: run with a time limit, output to OUT/NAME.txt, one summary line
    local name="$1" limit="$2"; shift 2
    local t0=$(date +%s)
    echo ">>> $name (limit ${limit}s): $*"
    timeout --signal=INT --kill-after=10 "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$? t1=$(date +%s)
    local status="ok"
    [ $rc -ne 0 ] && status="FAILED (exit $rc)"
    [ $rc -eq 124 ] || [ $rc -eq 130 ] && status="TIMED OUT after ${limit}s"
    echo "| $name | $status | $((t1 - t0)) | \`$*\` |" >> "$SUMMARY"
    tail -n 3 "$OUT/$name.txt"
}

{
    echo "# monai_avsm GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git rev-parse --abbrev-ref HEAD 2>/dev/null)"
    "$PY" -c "import sys; sys.path.insert(0, 'benchmarks'); from _harness import machine_line; print(machine_line())"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    echo
} > "$SUMMARY"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "NO CUDA: torch.cuda.is_available() is False on this machine; no CUDA test or CUDA row can be run." \
        | tee -a "$SUMMARY"
    echo "CPU smoke run of the benchmark scripts instead (checks that they start):" >> "$SUMMARY"
    echo "" >> "$SUMMARY"
    echo "| step | status | s | command |" >> "$SUMMARY"
    echo "|---|---|---|---|" >> "$SUMMARY"
    step smoke_bench_vsvf_cpu 300 "$PY" benchmarks/bench_vsvf.py --quick --device cpu
    echo "" >> "$SUMMARY"
    echo "Tables and logs: $OUT/" | tee -a "$SUMMARY"
    exit 0
fi

echo "| step | status | s | command |" >> "$SUMMARY"
echo "|---|---|---|---|" >> "$SUMMARY"
# CUDA tests: every test whose name mentions cuda (the others are the CPU suite's business)
step tests_cuda 80 "$PY" -m pytest -q -rs -k "cuda or CUDA or gpu" tests/functional tests/networks tests/optimization
if [ $QUICK -eq 1 ]; then
    step bench_vsvf_cuda 60 "$PY" benchmarks/bench_vsvf.py --device cuda --repeats 5
    step bench_avsm_cuda 100 "$PY" benchmarks/bench_avsm.py --device cuda --sizes 192,192,80 --repeats 3
    step bench_mklncc_cuda 40 "$PY" benchmarks/bench_mklncc.py --device cuda --quick
else
    # limits add up to 430 s (+10 s grace each): the whole check stays within 8 minutes
    step bench_vsvf_cuda 80 "$PY" benchmarks/bench_vsvf.py --device cuda --repeats 20
    step bench_vsvf_cuda_profile 40 "$PY" benchmarks/bench_vsvf.py --device cuda --profile
    step bench_avsm_cuda 170 "$PY" benchmarks/bench_avsm.py --device cuda --repeats 5
    step bench_mklncc_cuda 60 "$PY" benchmarks/bench_mklncc.py --device cuda --repeats 5
fi
END=$(date +%s)
echo "" >> "$SUMMARY"
echo "Total: $((END - START)) s. Tables: $OUT/bench_*.txt (markdown, as in docs/benchmarks.md)." | tee -a "$SUMMARY"
grep -q "FAILED\|TIMED OUT" "$SUMMARY" && exit 1
exit 0
