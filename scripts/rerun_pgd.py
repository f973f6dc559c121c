"""Run every PGD-GAN cell of the benchmark grids (targets, operator tables, CS sweep) with the current pgd_gan.

    OMP_NUM_THREADS=1 nohup python scripts/rerun_pgd.py out/bench_honest > runs/rerun_pgd.log 2>&1 &
"""
import sys
from pathlib import Path
from genprior_nb.bench_settings import quality_grid
from genprior_nb.bench import run_quality

if __name__ == '__main__':
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'out/bench_honest')
    cells = [c for c in quality_grid(grid='targets') + quality_grid() if c.method == 'pgd_gan']
    print(f"{len(cells)} pgd_gan cells", flush=True)
    run_quality(out, cells=cells, progress=False)
