#!/usr/bin/env bash
# One-command check of the CUDA backend on a machine with a GPU:
#   1. builds hetensor with -Ccmake.define.HETENSOR_CUDA=ON into build/cuda-check
#      (into the active Python environment; make a fresh venv first if you care),
#   2. runs the GPU tests (pytest -m gpu: CPU vs CUDA bit for bit, kernel records),
#   3. runs the GPU bench (per-kernel CUDA-event times) for the presets given,
#   4. prints a summary; exit status 0 only when every step passed.
# Usage: bench/gpu_check.sh [PRESETS]   (default: toy-insecure,n16)
#        OUT=dir bench/gpu_check.sh      (where the logs and bench JSON go; default bench/out/gpu-check)
set -u
cd "$(dirname "$0")/.."
PRESETS="${1:-toy-insecure,n16}"
OUT="${OUT:-bench/out/gpu-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
declare -A STATUS

if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1 || true

echo "== build (HETENSOR_CUDA=ON) =="
if "$PY" -m pip install -q --no-build-isolation -e ".[test]" -Cbuild-dir=build/cuda-check \
     -Ccmake.define.HETENSOR_CUDA=ON > "$OUT/build.log" 2>&1; then STATUS[build]=ok; else STATUS[build]=FAILED; fi

echo "== device =="
"$PY" -c "import hetensor as h; print('compiled', h.cuda.is_compiled(), 'available', h.cuda.is_available(), \
'devices', h.cuda.device_count(), h.cuda.device_name(0) if h.cuda.is_available() else '')" > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
if grep -q "available True" "$OUT/device.txt"; then STATUS[device]=ok; else STATUS[device]=FAILED; fi

echo "== GPU tests =="
if "$PY" -m pytest -q -m gpu -rs tests/test_backend.py tests/test_cuda.py tests/test_device.py tests/test_bench_gpu.py \
     tests/test_resident.py tests/test_resident_keyswitch.py tests/test_fused_switch.py \
     > "$OUT/tests.log" 2>&1; then STATUS[tests]=ok; else STATUS[tests]=FAILED; fi
tail -n 3 "$OUT/tests.log"
# a GPU test that skipped on a machine with a GPU is a failure of this check
if grep -q "SKIPPED" "$OUT/tests.log"; then STATUS[tests]="FAILED (tests skipped)"; fi

echo "== GPU bench =="
if "$PY" -m hetensor.bench --device cuda:0 --preset "$PRESETS" --repeat 20 --no-progress \
     --json "$OUT/bench-gpu.json" --markdown "$OUT/bench-gpu.md" > "$OUT/bench.log" 2>&1; then
  STATUS[bench]=ok; else STATUS[bench]=FAILED; fi
cat "$OUT/bench.log"

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), $(cat "$OUT/gpu.txt" 2>/dev/null | head -n 1)) =="
rc=0
for step in build device tests bench; do
  printf '  %-7s %s\n' "$step" "${STATUS[$step]}"
  [ "${STATUS[$step]}" = ok ] || rc=1
done
echo "  logs and JSON in $OUT/"
exit $rc
