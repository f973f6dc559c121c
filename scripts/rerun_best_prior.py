"""Rerun, per benchmark problem, the best generator method's cell (by the stored mean PSNR) into OUT/cells/.

    OMP_NUM_THREADS=1 nohup python scripts/rerun_best_prior.py out/bench_honest > runs/rerun_best_prior.log 2>&1 &

The paired per-image comparisons against the (re-tuned) classical methods need per-image results, which the stored
tables (nbs/benchmarks/quality.csv, targets.csv) only hold as means; the rerun also checks that the stored means
reproduce (same code, same seeds). Resumable like every `bench quality` run.
"""
import sys
from pathlib import Path
from genprior_nb.core import read_csv
from genprior_nb.bench_settings import Cell
from genprior_nb.bench import run_quality

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT/'nbs'/'benchmarks'

def best_prior_cells(rows):
    best = {}
    for r in rows:
        if not r['generator']: continue
        k = (r['experiment'], r['dataset'], r['operator'], float(r['level']))
        if k not in best or r['psnr_mean'] > best[k]['psnr_mean']: best[k] = r
    return [Cell(e, d, o, l, r['generator'], r['method']) for (e, d, o, l), r in best.items()]

if __name__ == '__main__':
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'out/bench_honest')
    rows = read_csv(RES/'targets.csv') + read_csv(RES/'quality.csv')
    cells = best_prior_cells(rows)
    order = {'targets': 0, 'operators': 1, 'msweep': 2}
    cells.sort(key=lambda c: (order[c.experiment], c.dataset))
    print(f"{len(cells)} best-prior cells", flush=True)
    run_quality(out, cells=cells, progress=False)
