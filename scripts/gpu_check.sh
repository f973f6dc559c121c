#!/usr/bin/env bash
# The GPU check of issue 19 (scripts/gpu_check.py) on the device machine, in two steps.
#
# 1. Here, once per session (no GPU needed): copy what the device machine lacks into .gpu_carry/ (ignored by git):
#    fastcore (its image has torch, numpy, matplotlib, tqdm, scipy, scikit-image but not fastcore) and the four
#    Fashion-MNIST files (31 MB; the working tree plus these stay under the 64 MiB a call may send).
#        bash scripts/gpu_check.sh prepare
# 2. With the device tool, one call (about 6-8 minutes on an H200; the script starts no section after 480 s):
#        run(command="bash scripts/gpu_check.sh run", carry=[".gpu_carry"], timeout_s=600)
#    Its files come back under the reply's files_at; copy them into nbs/benchmarks/gpu/ and commit them:
#        mkdir -p nbs/benchmarks/gpu && cp <files_at>/* nbs/benchmarks/gpu/
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    site=$(.venv/bin/python -c 'import fastcore, os; print(os.path.dirname(os.path.dirname(fastcore.__file__)))')
    mkdir -p .gpu_carry/site .gpu_carry/fmnist
    rm -rf .gpu_carry/site/fastcore && cp -r "$site/fastcore" .gpu_carry/site/
    data=${GENPRIOR_DATA:-/usr/share/datasets/fashion-mnist}
    cp "$data"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz .gpu_carry/fmnist/
    grep -qx '/.gpu_carry/' .git/info/exclude 2>/dev/null || echo '/.gpu_carry/' >> .git/info/exclude
    du -sh .gpu_carry ;;
  run)
    export PYTHONPATH="$PWD/.gpu_carry/site:$PWD" GENPRIOR_DATA="$PWD/.gpu_carry/fmnist" PYTHONUNBUFFERED=1
    out=${OUT:-nbs/benchmarks/gpu}; mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python3 scripts/gpu_check.py --out "$out" "${@:2}" 2>&1 | tee "$out/gpu_check.log" ;;
  *) echo "usage: bash scripts/gpu_check.sh prepare | run [gpu_check.py options]"; exit 2 ;;
esac
