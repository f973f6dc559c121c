"""The honest comparison's re-run, problem by problem: the classical cells (tuned settings), the best prior method's cell
(per-image results for the paired tests) and the PGD-GAN cells, in the order the readings need them.

    OMP_NUM_THREADS=1 nohup python scripts/rerun_honest.py out/bench_honest [STAGE ...] > runs/rerun_honest.log 2>&1 &

STAGE: `targets` (the seven quality targets), `fmnist` (the Fashion-MNIST operator table), `msweep` (the CS sweep),
`shapes` (the shapes operator table), `desyre` (DESYRE's target cells), `pgd` (every PGD-GAN cell); default all, in
that order. A problem's classical cells run only once
`scripts/tune_classical.py` has tuned it (its cells are skipped with a message otherwise, so a later run picks them
up). Resumable, and two processes may run at once: every cell is claimed with a lock file (`bench.run_quality`).
Afterwards: `python scripts/finalize_honest.py out/bench_honest`.
"""
import sys
from pathlib import Path
from genprior_nb.core import read_csv
from genprior_nb.bench_settings import quality_grid, CLASSICAL_TUNING
from genprior_nb.bench import run_quality

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerun_best_prior import best_prior_cells, RES

STAGES = {'targets': lambda c: c.experiment == 'targets',
          'fmnist': lambda c: c.experiment == 'operators' and c.dataset == 'fmnist',
          'msweep': lambda c: c.experiment == 'msweep',
          'shapes': lambda c: c.experiment == 'operators' and c.dataset == 'shapes',
          'desyre': lambda c: c.method == 'desyre',   # DESYRE's cells (the targets), at its tuned settings
          'pgd': lambda c: c.method == 'pgd_gan' and (c.experiment != 'operators' or c.dataset == 'fmnist')}   # every PGD-GAN cell

def tuned() -> set:
    "Problems with rows in the classical tuning table."
    rows = read_csv(CLASSICAL_TUNING) if CLASSICAL_TUNING.exists() else []
    return {(r['dataset'], r['operator'], float(r['level'])) for r in rows}

if __name__ == '__main__':
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'out/bench_honest')
    stages = sys.argv[2:] or list(STAGES)
    grid = quality_grid(grid='targets') + quality_grid()
    best = best_prior_cells(read_csv(RES/'targets.csv') + read_csv(RES/'quality.csv'))
    for stage in stages:
        keep = STAGES[stage]; done = tuned()
        classical = [c for c in grid if keep(c) and not c.generator]
        ready = [c for c in classical if (c.dataset, c.operator, float(c.level)) in done]
        if len(ready) < len(classical):
            print(f"{stage}: {len(classical) - len(ready)} classical cells wait for their tuning", flush=True)
        cells = ([c for c in grid if keep(c)] if stage in ('desyre', 'pgd') else
                 [c for c in best if keep(c) and c.method != 'pgd_gan'] + sorted(ready, key=lambda c: c.method == 'pnp_bm3d'))
        print(f"{stage}: {len(cells)} cells", flush=True)
        run_quality(out, cells=cells, progress=False)
