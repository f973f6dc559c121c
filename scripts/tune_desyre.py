"""Tune alpha of DESYRE (genprior_nb.desyre) for every Fashion-MNIST benchmark problem, the quality targets first.

    OMP_NUM_THREADS=1 nohup python scripts/tune_desyre.py > runs/tune_desyre.log 2>&1 &

Writes genprior_nb/tuning/desyre_tuning.csv (`desyre.desyre_settings` reads it) after every problem, atomically;
resumable: problems already in the CSV are skipped (delete the file to redo them all).

On 16 images *outside* the benchmark subset (`eval_images(16, seed=1)`, as every other tuning), noise as in the
benchmark (`bench_settings.bench_operator`), the shipped network `desyre-fmnist`, FISTA with STEPS iterations from
E(x0): x0 is TV with TV's tuned weight (`bench_settings.classical_settings('tv', ...)`; the library default where the
classical tuning has no row), and for tomography also the filtered back-projection (the paper's start). Alpha: a
coarse grid of COARSE values (half decades), then FINE values around the best (quarter decades either side): 10
settings per start, at most 20 per problem. Every alpha of a round runs as one batch (alpha is per image).
"""
import os, json, time
import torch
from genprior_nb.core import set_cpu_threads, read_csv, write_csv
from genprior_nb.data import eval_images
from genprior_nb.bench_settings import bench_operator, tuned_problems, classical_settings
from genprior_nb.baselines import default_lambda
from genprior_nb.metrics import psnr
from genprior_nb.desyre import desyre, load_desyre, DESYRE_TUNING
from genprior_nb.baselines import classical_start

STEPS = 150
COARSE = tuple(10**(-e/2) for e in range(8))           # 1 ... 3.2e-4, half decades (8 values)
FINE = (10**-0.25, 10**0.25)                           # a quarter decade either side of the best coarse value

def run(x, y, op, net, alphas, start):
    "Mean PSNR of DESYRE per alpha, all alphas in one batch."
    K, n = len(alphas), len(x)
    r = desyre(y.repeat(K, *[1]*(y.ndim - 1)), op, net, alpha=torch.tensor(alphas).repeat_interleave(n), steps=STEPS,
               init=start.repeat(K, 1, 1, 1))
    return psnr(r.x, x.repeat(K, 1, 1, 1)).view(K, n).mean(1).tolist()

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    x = eval_images(16, seed=1)[0]
    net = load_desyre('desyre-fmnist')
    rows = read_csv(DESYRE_TUNING) if DESYRE_TUNING.exists() else []
    done = {(r['dataset'], r['operator'], float(r['level'])) for r in rows}
    for ds, name, level in tuned_problems():
        if ds != 'fmnist' or (ds, name, float(level)) in done: continue
        t0 = time.time()
        op, noise = bench_operator(name, level); y = op.measure(x, noise, seed=0)
        tv_lam = classical_settings('tv', name, level).get('lam', default_lambda('tv', op))
        for init in (('fbp', 'tv') if name == 'tomo' else ('tv',)):   # tomography: the paper's FBP start, and TV's
            init_lam = None if init == 'fbp' else tv_lam
            start = classical_start(y, op, init, init_lam)
            scores = dict(zip(COARSE, run(x, y, op, net, list(COARSE), start)))
            best = max(scores, key=scores.get)
            fine = [best * f for f in FINE]
            scores.update(zip(fine, run(x, y, op, net, fine, start)))
            sec = time.time() - t0
            for a, p in sorted(scores.items(), reverse=True):
                settings = {'alpha': float(f'{a:.4g}'), 'steps': STEPS, 'init': init, 'init_lam': init_lam}
                rows.append(dict(dataset=ds, operator=name, level=level, noise=noise, settings=json.dumps(settings),
                                 psnr_mean=round(p, 4), start_psnr=round(psnr(start, x).mean().item(), 4), seconds=round(sec, 1)))
            b = max(scores, key=scores.get)
            print(f"{name} {level:g}, {init} start: best alpha {b:.3g} -> {scores[b]:.2f} dB (start {psnr(start, x).mean():.2f} dB, "
                  f"{sec:.0f} s)", flush=True)
        write_csv(DESYRE_TUNING, rows, list(rows[0]))
