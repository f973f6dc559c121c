"""Merge a re-run of the benchmark cells (the re-tuned classical methods and the best prior method per problem) into
the stored results, and redo the paired per-image comparisons.

    python scripts/finalize_honest.py out/bench_honest

Reads OUT/cells/*.csv (`bench.CELL_COLUMNS`); in nbs/benchmarks/ it
- replaces every classical row of quality.csv (the CS sweep and the operator tables) and targets.csv by the new cells
  (the old classical settings are gone), adds the new classical methods, and replaces the prior rows that were re-run;
- prints how far each re-run prior cell's mean PSNR is from the stored one (same code and seeds: it should be 0);
- writes paired.csv and targets_paired.csv (best prior against best classical, paired per image) from the cell files;
- stores the per-image cell files as cells_<experiment>.csv.gz, so later comparisons need no re-run;
- redraws the figures.
"""
import sys, csv, gzip, io, json, time, platform
from pathlib import Path
from genprior_nb.core import read_csv, write_csv, atomic_write_bytes
from genprior_nb.data import save_figure
from genprior_nb.bench import CELL_COLUMNS
from genprior_nb.bench_report import (aggregate, paired_comparison, QUALITY_COLUMNS, PAIRED_COLUMNS, plot_msweep,
                                      plot_operator_table)

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT/'nbs'/'benchmarks'

def merge(old, new):
    "Old rows without the classical rows of problems the new run covers, and without re-run keys; then the new rows."
    covered = {(r['experiment'], r['dataset'], r['operator'], float(r['level'])) for r in new if not r['generator']}
    keys = {r['key'] for r in new}
    keep = [r for r in old if r['key'] not in keys and
            not (not r['generator'] and (r['experiment'], r['dataset'], r['operator'], float(r['level'])) in covered)]
    order = {'msweep': 0, 'operators': 1, 'targets': 2}
    return sorted(keep + new, key=lambda r: (order.get(r['experiment'], 3), r['dataset'], r['operator'], float(r['level']),
                                             r['generator'] != '', r['generator'] or '', r['method']))

if __name__ == '__main__':
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'out/bench_honest')
    new = aggregate(out)
    old = {r['key']: r for r in read_csv(RES/'quality.csv') + read_csv(RES/'targets.csv')}
    for r in new:
        if r['generator'] and r['key'] in old:
            print(f"re-run {r['key']}: {r['psnr_mean']:.4f} dB, stored {old[r['key']]['psnr_mean']:.4f} "
                  f"(difference {r['psnr_mean'] - old[r['key']]['psnr_mean']:+.4f})")
    for r in new: r['generator'] = r['generator'] or ''
    for name, exps in (('quality.csv', ('msweep', 'operators')), ('targets.csv', ('targets',))):
        rows = merge([r for r in read_csv(RES/name)], [r for r in new if r['experiment'] in exps])
        for r in rows: r['generator'] = r['generator'] or ''
        write_csv(RES/name, rows, QUALITY_COLUMNS)
    quality, targets = read_csv(RES/'quality.csv'), read_csv(RES/'targets.csv')
    for rows in (quality, targets):
        for r in rows: r['generator'] = r['generator'] or ''
    # paired comparisons need per-image files for both sides: restrict to the cells of this run
    have = {f.stem for f in (out/'cells').glob('*.csv')}
    problem = lambda r: (r['experiment'], r['dataset'], r['operator'], float(r['level']))
    def keep_old(name, fresh):   # problems this run did not cover keep their stored paired rows
        covered = {problem(r) for r in fresh}
        return [r for r in read_csv(RES/name) if problem(r) not in covered] + fresh if (RES/name).is_file() else fresh
    pq = keep_old('paired.csv', paired_comparison(out, [r for r in quality if r['key'] in have]))
    write_csv(RES/'paired.csv', pq, PAIRED_COLUMNS)
    pt = keep_old('targets_paired.csv', paired_comparison(out, [r for r in targets if r['key'] in have]))
    write_csv(RES/'targets_paired.csv', pt, PAIRED_COLUMNS)
    # the run records: one line per experiment for this re-run (cells, summed cell time, when the cell files were written)
    for name, exps in (('quality_run.json', ('msweep', 'operators')), ('targets_run.json', ('targets',))):
        files = [f for f in (out/'cells').glob('*.csv') if f.name.split('__')[0] in exps]
        if not files: continue
        rec = json.loads((RES/name).read_text())
        cells = [read_csv(f) for f in files]
        t0, t1 = (time.strftime('%Y-%m-%d %H:%M', time.gmtime(t)) for t in (min(f.stat().st_mtime for f in files), max(f.stat().st_mtime for f in files)))
        line = (f"honest re-run (issue 20): {len(files)} cells (classical methods tuned per problem, the best prior method, PGD-GAN, DESYRE) "
                f"on one or two workers ({platform.processor() or platform.machine()}), cell files written {t0} to {t1} UTC, summed cell time {sum(c[0]['seconds'] for c in cells):,.0f} s")
        rec['runs'] = [x for x in rec.get('runs', []) if not x.startswith('honest re-run')] + [line]
        rows = quality if exps != ('targets',) else targets
        rec.update(cells=len(rows), done=len(rows), cell_seconds_total=round(sum(r['seconds'] for r in rows), 1),
                   finished_utc=t1.replace('T', ' ') + ':00')
        atomic_write_bytes(RES/name, json.dumps(rec, indent=1).encode())
    (out/'paired.csv').unlink(missing_ok=True)
    for exp in ('msweep', 'operators', 'targets'):
        rows = [row for f in sorted((out/'cells').glob(f'{exp}__*.csv')) for row in read_csv(f)]
        buf = io.StringIO(); w = csv.DictWriter(buf, fieldnames=list(CELL_COLUMNS), lineterminator='\n')
        w.writeheader(); w.writerows([{k: r.get(k) for k in CELL_COLUMNS} for r in rows])
        atomic_write_bytes(RES/f'cells_{exp}.csv.gz', gzip.compress(buf.getvalue().encode(), mtime=0))
    for ds in ('fmnist', 'shapes'):
        if any(r['experiment'] == 'msweep' and r['dataset'] == ds for r in quality): save_figure(plot_msweep(quality, ds), RES/f'msweep_{ds}.png')
        save_figure(plot_operator_table(quality, ds), RES/f'operators_{ds}.png')
    save_figure(plot_operator_table(targets, 'fmnist', experiment='targets'), RES/'targets_fmnist.png')
    print(f"{len(new)} re-run cells merged; paired: {len(pq)} sweep/table problems, {len(pt)} targets")
