#!/usr/bin/env bash
# The first run on a GPU, in one command: on a machine with CuPy and PyTorch (CUDA builds),
#   bash benchmarks/gpu.sh [RESULTS_FILE]
# 1. the whole test suite on the real CuPy backend (TINYGRAD_RNN_TEST_BACKENDS=cupy: every test
#    once, on the GPU; the NumPy run is CI's job),
# 2. python -m tinygrad_rnn check --backend cupy (the PyTorch-recorded fixtures, on the GPU),
# 3. benchmarks/gpu_rnn.py: fused RNN/LSTM/GRU against torch cuDNN at H=1024, N=256, T=200 and
#    H=128, N=32, T=100, float32, synchronised.
# Everything goes to one results file (default gpu-results.txt); the exit status is non-zero if
# any part failed. Budget: under 8 minutes on one modern GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-results.txt}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
exec > >(tee "$out") 2>&1
echo "# tinygrad_rnn first GPU run, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
python - <<'PY'
import cupy, torch
print("cupy", cupy.__version__, "| devices:", cupy.cuda.runtime.getDeviceCount(),
    "| torch", torch.__version__, "| torch.cuda:", torch.cuda.is_available())
PY
echo "## 1. test suite on cupy"
TINYGRAD_RNN_BACKEND=cupy TINYGRAD_RNN_TEST_BACKENDS=cupy timeout 300 python -m pytest -q -x \
  -p no:cacheprovider 2>&1 | tail -25 || status=1
echo "## 2. parity fixtures on cupy"
timeout 120 python -m tinygrad_rnn check --backend cupy 2>&1 | tail -20 || status=1
echo "## 3. fused layers vs cuDNN"
timeout 150 python benchmarks/gpu_rnn.py --out "${out%.txt}.json" 2>&1 || status=1
echo "## exit status: $status"
exit $status
