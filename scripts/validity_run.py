"""Train, score and reconstruct the validity family (nbs/23_validity.ipynb) into nbs/benchmarks/validity/.

    OMP_NUM_THREADS=1 nohup .venv/bin/python scripts/validity_run.py > runs/validity_run.out 2>&1 &
    python scripts/validity_run.py vae-k8 wgan-k8     # only these members

Resumable at every level: a finished training run, score or reconstruction cell is skipped; a stopped training run
continues from its checkpoint (--resume). Progress goes to runs/validity.log. One thread throughout.
"""
import os, sys
from pathlib import Path
from genprior_nb.core import set_cpu_threads
from genprior_nb.validity import run_family

ROOT = Path(__file__).resolve().parents[1]

if __name__ == '__main__':
    set_cpu_threads(1)
    os.chdir(ROOT)   # the manifest records commands with paths relative to the repository
    names = sys.argv[1:] or None
    run_family('runs/validity', 'nbs/benchmarks/validity', names, log='runs/validity.log')
