"""The amortised-start benchmark of nbs/24_amortised.ipynb: reference protocol, batched csgm and amortised starts on
the same images, one thread; results copied to nbs/benchmarks/amortised.csv.

    OMP_NUM_THREADS=1 nohup python scripts/bench_amortised.py > runs/bench_amortised.log 2>&1 &

Run it on a quiet machine: its seconds and speed-ups are wall times (its network passes per image are not).
"""
import os, shutil
from pathlib import Path
from genprior_nb.core import set_cpu_threads
from genprior_nb.amortised import bench_amortised

ROOT = Path(__file__).resolve().parents[1]

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    bench_amortised(ROOT/'out'/'amortised')
    shutil.copy(ROOT/'out'/'amortised'/'amortised.csv', ROOT/'nbs'/'benchmarks'/'amortised.csv')
