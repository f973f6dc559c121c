"""Run every classical cell of the benchmark grids (the CS sweep, the operator tables, the quality targets) with the
tuned settings of `bench_settings.classical_settings` into OUT/cells/.

    OMP_NUM_THREADS=1 nohup python scripts/rerun_classical.py out/bench_honest > runs/rerun_classical.log 2>&1 &

Run it after scripts/tune_classical.py has finished (the grid's PnP-BM3D cells depend on the tuning). Resumable.
"""
import sys
from pathlib import Path
from genprior_nb.bench_settings import quality_grid
from genprior_nb.bench import run_quality

if __name__ == '__main__':
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'out/bench_honest')
    cells = [c for c in quality_grid(grid='targets') + quality_grid() if not c.generator]
    cells.sort(key=lambda c: (c.method == 'pnp_bm3d', c.experiment != 'targets'))   # the cheap cells first, the targets first
    print(f"{len(cells)} classical cells", flush=True)
    run_quality(out, cells=cells, progress=False)
