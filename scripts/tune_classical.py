"""Tune every classical method's weights per benchmark problem, on held-out images, like the soft constraint + TV.

    OMP_NUM_THREADS=1 nohup python scripts/tune_classical.py [DATASET:OPERATOR:LEVEL ...] > runs/tune_classical.log 2>&1 &

With arguments (e.g. `fmnist:denoise:0.1`), only those problems. `--edges`: tune nothing new, but follow every stored
weight whose best lies on its grid's edge (see below) and add the extra rows.

Writes genprior_nb/tuning/classical_tuning.csv (read by `bench_settings.classical_settings`). Resumable: the CSV is
rewritten atomically after every (problem, method); those already in it are skipped.

Problems: every problem of the benchmark grids (the quality targets, the Fashion-MNIST and shapes operator tables and
the CS sweep). Images: `eval_images(16, seed=1)` of the problem's data set, outside the benchmark subset (as for the
baselines' defaults and the soft constraint's tuning); noise as in the benchmark. Grids (at most 21 settings, the
budget of the soft constraint + TV tuning): the weight of Tikhonov, TV, l1-DCT and l1-Haar at 21 log-spaced factors from
1/8 to 8 times its default; FBP's filter (Ram-Lak or Hann); BM3D's noise std at 0.7-1.3 times the true one; PnP-BM3D's data weight lam in
{0.05, 0.1, 0.23, 0.5, 1, 2, 4} (its cost, 30 BM3D passes per image, keeps the grid at 7).
A weight whose best value lies on the grid's edge, more than 0.005 dB above its neighbour, is followed past the edge
(3 more factors at a time, up to 12) until the PSNR turns down or flattens: the optimum is inside the tried range.
"""
import os, sys, json, time
from genprior_nb.core import set_cpu_threads, read_csv, write_csv
from genprior_nb.data import eval_images
from genprior_nb.baselines import default_lambda, applicable
from genprior_nb.bench_settings import bench_operator, TUNING_DIR, tuned_problems, tune_classical

OUT = TUNING_DIR/'classical_tuning.csv'
COLUMNS = ('dataset', 'operator', 'level', 'noise', 'method', 'settings', 'psnr_mean', 'seconds')
FACTORS = [2**(k * 0.3) for k in range(-10, 11)]   # 1/8 .. 8, 21 values

EDGE_GAIN = 0.005   # dB: a best-on-the-edge weight that beats its neighbour by more is followed past the edge

def extend(x, y, op, method, scores, max_more=12):
    "Follow a weight past the grid's edge while the best lies there and still gains: the scores of the extra settings."
    extra = []
    for _ in range(max_more // 3):
        allsc = scores + extra
        lams = sorted({kw['lam'] for kw, _ in allsc}); best_kw, best_p = max(allsc, key=lambda s: s[1])
        lam = best_kw['lam']
        if lam not in (lams[0], lams[-1]) or len(lams) < 2: break
        nb = lams[1] if lam == lams[0] else lams[-2]
        if best_p - dict((kw['lam'], p) for kw, p in allsc)[nb] <= EDGE_GAIN: break
        step = (FACTORS[1] / FACTORS[0] if method != 'pnp_bm3d' else 2.) ** (1 if lam == lams[-1] else -1)   # the grid's own ratio
        extra += tune_classical(x, y, op, method, [dict(best_kw, lam=round(lam * step**j, 8)) for j in (1, 2, 3)])
    return extra

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
    edges = '--edges' in sys.argv
    only = set(sys.argv[1:]) - {'--edges'}
    for ds, name, level in tuned_problems():
        if only and f"{ds}:{name}:{level:g}" not in only: continue
        if ds not in images: images[ds] = eval_images(16, seed=1, dataset=ds)[0]
        x = images[ds]
        op, noise = bench_operator(name, level); y = op.measure(x, noise, seed=0)
        for method in ('tikhonov', 'tv', 'l1_dct', 'l1_wavelet', 'fbp', 'bm3d', 'pnp_bm3d'):
            key = (ds, name, float(level), method)
            if edges:
                if key not in done or method == 'fbp': continue
                stored = [(json.loads(r['settings']), r['psnr_mean']) for r in rows if (r['dataset'], r['operator'], float(r['level']), r['method']) == key]
                t0 = time.time(); more = extend(x, y, op, method, stored)
                if not more: continue
                rows += [dict(dataset=ds, operator=name, level=level, noise=noise, method=method, settings=json.dumps(kw),
                              psnr_mean=round(p, 4), seconds=round((time.time() - t0) / len(more), 2)) for kw, p in more]
                write_csv(OUT, rows, COLUMNS)
                b = max(stored + more, key=lambda s: s[1])
                print(f"{ds} {name} {level:g} {method}: edge followed, {len(more)} more -> best {b[0]} {b[1]:.2f} dB", flush=True)
                continue
            if key in done or not applicable(method, op): continue
            t0 = time.time(); settings = grid(method, op, noise)
            scores = tune_classical(x, y, op, method, settings)
            if settings and 'lam' in settings[0]:
                more = extend(x, y, op, method, scores); scores = sorted(scores + more, key=lambda s: -s[1]); settings = settings + [kw for kw, _ in more]
            sec = (time.time() - t0) / len(settings)
            rows += [dict(dataset=ds, operator=name, level=level, noise=noise, method=method, settings=json.dumps(kw),
                          psnr_mean=round(p, 4), seconds=round(sec, 2)) for kw, p in scores]
            write_csv(OUT, rows, COLUMNS)
            print(f"{ds} {name} {level:g} {method}: best {scores[0][0]} -> {scores[0][1]:.2f} dB ({time.time() - t0:.0f} s)", flush=True)
