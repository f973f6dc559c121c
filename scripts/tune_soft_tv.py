"""Tune the weights (b, tv) of `soft_constraint` with a TV term for every Fashion-MNIST benchmark problem.

    python scripts/tune_soft_tv.py        # writes genprior_nb/tuning/soft_tv_tuning.csv (bench_settings.SOFT_TV_WEIGHTS reads it)

Resumable: problems already in the CSV are not tuned again (delete the file to redo them all).

On 16 images *outside* the benchmark subset (`eval_images(16, seed=1)`, as the baselines' DEFAULT_LAMBDAS were
tuned), noise as in the benchmark, VAE prior: one CSGM warm-up per problem (3 restarts x 200 steps, pruned after a
third), then every b of the grid in one batch (b is per image) for each TV factor f, tv = f x 2 x the TV baseline's
tuned weight (the soft constraint's objective is twice `tv_reconstruct`'s). The best mean PSNR per problem wins.
"""
import os, time
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads
from genprior_nb.data import eval_images
from genprior_nb.pretrained import load_pretrained
from genprior_nb.core import read_csv, write_csv
from genprior_nb.bench_settings import bench_operator, OPERATOR_LEVELS, TARGET_LEVELS, MSWEEP_M, TUNING_DIR
from genprior_nb.latent_opt import csgm, soft_constraint
from genprior_nb.baselines import default_lambda
from genprior_nb.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
OUT = TUNING_DIR/'soft_tv_tuning.csv'
B_GRID = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
TV_FACTORS = (0.25, 0.5, 1.0)

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    x = eval_images(16, seed=1)[0]; n = len(x); K = len(B_GRID)
    G = load_pretrained('vae-fmnist-8')
    rows = read_csv(OUT) if OUT.exists() else []
    best = {}
    for r in rows:
        k = (r['operator'], float(r['level']))
        if r['psnr_mean'] > best.get(k, (None, None, -1))[2]: best[k] = (r['b'], r['tv'], r['psnr_mean'])
    problems = list(dict.fromkeys(list(TARGET_LEVELS) + list(OPERATOR_LEVELS['fmnist']) + [('cs', m) for m in MSWEEP_M]))
    for name, level in problems:
        if (name, float(level)) in best: continue
        t0 = time.time()
        op, noise = bench_operator(name, level); y = op.measure(x, noise, seed=0)
        warm = csgm(y, op, G, 3, 200, 0.05, prune=1/3)
        yy, bb = y.repeat(K, *[1]*(y.ndim - 1)), torch.tensor(B_GRID).repeat_interleave(n)
        for f in TV_FACTORS:
            tv = f * 2 * default_lambda('tv', op)
            r = soft_constraint(yy, op, G, b=bb, tv=tv, restarts=1, warmup_steps=1, steps=100, init=warm.z.repeat(K, 1))
            p = psnr(r.x, x.repeat(K, 1, 1, 1)).view(K, n).mean(1)
            for b, v in zip(B_GRID, p.tolist()):
                rows.append(dict(operator=name, level=level, noise=noise, b=b, tv_factor=f, tv=round(tv, 6), psnr_mean=round(v, 3)))
                if v > best.get((name, float(level)), (None, None, -1))[2]: best[(name, float(level))] = (b, round(tv, 6), v)
        k = (name, float(level))
        print(f"{name} {level:g}: best b {best[k][0]}, tv {best[k][1]} -> {best[k][2]:.2f} dB ({time.time() - t0:.0f} s)", flush=True)
        write_csv(OUT, rows, list(rows[0]))   # after every problem, atomically: an interrupted run resumes
    print('best (b, tv) per problem:', {k: v[:2] for k, v in best.items()})
