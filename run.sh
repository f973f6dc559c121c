#!/usr/bin/env bash
# genprior_nb: one entry point that sets everything up (idempotent, fast when nothing changed) and runs a job.
#   bash run.sh demo   -> set up, then run the Figure-1 demo (writes out/demo.png)
#   bash run.sh test   -> set up, then run every notebook test and the pytest suite
#   bash run.sh setup  -> set up only
#   bash run.sh docs   -> set up, then build the documentation site into _docs/ (no Quarto needed)
#   bash run.sh browser-test -> set up, install Chromium + chromedriver (apt, root) and selenium, build the docs,
#                               then check every page in headless Chromium (screenshots in out/docs-screenshots/)
#   bash run.sh lab-test -> set up, install Chromium + chromedriver and selenium as browser-test does, then run the three
#                           widgets of nbs/13_latent_space.ipynb in a real JupyterLab in headless Chromium
#                           (tests/test_lab.py; at most 10 minutes; screenshots in out/lab-screenshots/)
#   bash run.sh interop-test -> set up a second venv (.venv-interop: torch 2.14.1, torchvision 0.29.1, deepinv) and
#                               run tests/interop/ against the real deepinv (the main venv never needs deepinv)
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY="$VENV/bin/python"

setup() {
  # The stamp holds a hash of what decides the install, so a re-run with nothing changed skips pip entirely.
  local want; want=$(cat settings.ini setup.py | sha1sum | cut -d' ' -f1)
  if [ ! -x "$PY" ] || [ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" != "$want" ]; then
    echo "== setting up $VENV (torch CPU wheel first, then genprior_nb[dev])"
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
    "$PY" -m pip install -q "torch==2.13.0"
    "$PY" -m pip install -q -e ".[dev]"
    echo "$want" > "$VENV/.setup-stamp"
  fi
  if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing the Debian package dataset-fashion-mnist"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
      || echo "   (could not install dataset-fashion-mnist; the shapes data will be used where needed)"
  fi
}

run_tests() {
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
  echo "== library in sync with notebooks (nbdev_export must change nothing)"
  local before after
  before=$(git status --porcelain -- genprior_nb 2>/dev/null | sha1sum)
  "$VENV/bin/nbdev_export"
  after=$(git status --porcelain -- genprior_nb 2>/dev/null | sha1sum)
  if [ "$before" != "$after" ]; then
    echo "FAIL: nbdev_export changed genprior_nb/; export the notebooks and commit." >&2
    git status --porcelain -- genprior_nb >&2
    exit 1
  fi
  echo "== nbdev_test (notebooks, #| slow cells skipped)"
  "$VENV/bin/nbdev_test" --n_workers 2 --timing
  echo "== pytest tests/"
  "$PY" -m pytest tests -q -p no:cacheprovider "$@"
}

build_docs() {
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
  echo "== building the docs: nbdev's processors + nbconvert (scripts/build_docs.py)"
  "$PY" scripts/build_docs.py "$@" >/dev/null
  echo "== site: $PWD/_docs/index.html  (serve it with: $PY -m http.server -d _docs)"
}

browser_setup() {
  # Debian's Chromium and its driver; Selenium is given their paths, so it never downloads a browser or driver.
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== installing the Debian packages chromium and chromium-driver"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
    else
      echo "FAIL: the browser test needs /usr/bin/chromium and /usr/bin/chromedriver (as root: apt-get install chromium chromium-driver)" >&2
      exit 1
    fi
  fi
  # selenium is setup.py's 'browser' extra
  "$PY" -c "import selenium" 2>/dev/null || "$PY" -m pip install -q "selenium>=4"
}

IVENV=.venv-interop
DEEPINV_VERSION=0.5.0
interop_setup() {
  # deepinv imports torchvision, which does not load beside the main venv's torch 2.13.0 CPU wheel: a venv of its own.
  local want; want=$(cat settings.ini setup.py | sha1sum | cut -d' ' -f1)-deepinv-$DEEPINV_VERSION
  if [ ! -x "$IVENV/bin/python" ] || [ "$(cat "$IVENV/.setup-stamp" 2>/dev/null)" != "$want" ]; then
    echo "== setting up $IVENV (torch 2.14.1 + torchvision 0.29.1, then deepinv $DEEPINV_VERSION and genprior_nb[deepinv])"
    local t0=$SECONDS
    [ -x "$IVENV/bin/python" ] || python3 -m venv "$IVENV"
    "$IVENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$IVENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
    # torch and torchvision repeated so that pip keeps them rather than resolving another build
    "$IVENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "deepinv==$DEEPINV_VERSION" -e ".[deepinv]" "pytest>=7"
    echo "$want" > "$IVENV/.setup-stamp"
    echo "   ($IVENV set up in $((SECONDS - t0)) s)"
  fi
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup ;;
  demo)  setup; MPLBACKEND=Agg "$VENV/bin/genprior" demo "$@" ;;
  test)  setup; run_tests "$@" ;;
  docs)  setup; build_docs "$@" ;;
  browser-test)
    setup; browser_setup; build_docs
    OMP_NUM_THREADS=1 MPLBACKEND=Agg "$PY" -m pytest tests/test_docs.py -q -p no:cacheprovider --browser "$@"
    echo "== screenshots: $PWD/out/docs-screenshots/" ;;
  lab-test)
    setup; browser_setup
    # timeout sends SIGTERM first: the test unwinds and stops JupyterLab, its kernel and the browser; -k 30: then SIGKILL
    OMP_NUM_THREADS=1 timeout -k 30 600 "$PY" -m pytest tests/test_lab.py -q -p no:cacheprovider --browser -s "$@"
    echo "== screenshots: $PWD/out/lab-screenshots/" ;;
  interop-test)
    interop_setup
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg "$IVENV/bin/python" -m pytest tests/interop --interop -q -p no:cacheprovider "$@" ;;
  *) echo "usage: bash run.sh {demo|test|setup|docs|browser-test|lab-test|interop-test}"; exit 2 ;;
esac
