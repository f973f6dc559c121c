"""Tune every classical method's weights per benchmark problem, on held-out images, like the soft constraint + TV.

    OMP_NUM_THREADS=1 nohup python scripts/tune_classical.py [DATASET:OPERATOR:LEVEL ...] > runs/tune_classical.log 2>&1 &

With arguments (e.g. `fmnist:denoise:0.1`), only those problems.

Writes genprior_nb/tuning/classical_tuning.csv (read by `bench_settings.classical_settings`). Resumable: the CSV is
rewritten atomically after every (problem, method); those already in it are skipped.

Problems: every problem of the benchmark grids (the quality targets, the Fashion-MNIST and shapes operator tables and
the CS sweep). Images: `eval_images(16, seed=1)` of the problem's data set, outside the benchmark subset (as for the
baselines' defaults and the soft constraint's tuning); noise as in the benchmark. Grids (at most 21 settings, the
budget of the soft constraint + TV tuning): the weight of Tikhonov, TV, l1-DCT and l1-Haar at 21 log-spaced factors from
1/8 to 8 times its default; FBP's filter (Ram-Lak or Hann); BM3D's noise std at 0.7-1.3 times the true one; PnP-BM3D's data weight lam in
{0.05, 0.1, 0.23, 0.5, 1, 2, 4} (its cost, 30 BM3D passes per image, keeps the grid at 7).
"""
import os, sys, json, time
from genprior_nb.core import set_cpu_threads, read_csv, write_csv
from genprior_nb.data import eval_images
from genprior_nb.baselines import default_lambda, applicable
from genprior_nb.bench_settings import bench_operator, TUNING_DIR, tuned_problems, tune_classical

OUT = TUNING_DIR/'classical_tuning.csv'
COLUMNS = ('dataset', 'operator', 'level', 'noise', 'method', 'settings', 'psnr_mean', 'seconds')
FACTORS = [2**(k * 0.3) for k in range(-10, 11)]   # 1/8 .. 8, 21 values

def grid(method, op, noise):
    if method in ('tikhonov', 'tv', 'l1_dct', 'l1_wavelet'):
        return [{'lam': round(default_lambda(method, op) * f, 6)} for f in FACTORS]
    if method == 'bm3d': return [{'lam': round(noise * f, 6)} for f in (0.7, 0.85, 1.0, 1.15, 1.3)]
    if method == 'pnp_bm3d': return [{'lam': l, 'noise_std': noise} for l in (0.05, 0.1, 0.23, 0.5, 1.0, 2.0, 4.0)]
    if method == 'fbp': return [{'filter': f} for f in ('ramp', 'hann')]
    return []

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    rows = read_csv(OUT) if OUT.exists() else []
    done = {(r['dataset'], r['operator'], float(r['level']), r['method']) for r in rows}
    images = {}
    only = set(sys.argv[1:])
    for ds, name, level in tuned_problems():
        if only and f"{ds}:{name}:{level:g}" not in only: continue
        if ds not in images: images[ds] = eval_images(16, seed=1, dataset=ds)[0]
        x = images[ds]
        op, noise = bench_operator(name, level); y = op.measure(x, noise, seed=0)
        for method in ('tikhonov', 'tv', 'l1_dct', 'l1_wavelet', 'fbp', 'bm3d', 'pnp_bm3d'):
            if (ds, name, float(level), method) in done or not applicable(method, op): continue
            t0 = time.time(); settings = grid(method, op, noise)
            scores = tune_classical(x, y, op, method, settings)
            sec = (time.time() - t0) / len(settings)
            rows += [dict(dataset=ds, operator=name, level=level, noise=noise, method=method, settings=json.dumps(kw),
                          psnr_mean=round(p, 4), seconds=round(sec, 2)) for kw, p in scores]
            write_csv(OUT, rows, COLUMNS)
            print(f"{ds} {name} {level:g} {method}: best {scores[0][0]} -> {scores[0][1]:.2f} dB ({time.time() - t0:.0f} s)", flush=True)
