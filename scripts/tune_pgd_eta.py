"""PGD-GAN's image-space step eta (relative to 1/||A||^2) on the quality-target problems, against csgm at the same budget.

    OMP_NUM_THREADS=1 python scripts/tune_pgd_eta.py      # writes nbs/benchmarks/pgd_eta.csv (resumable)

On 16 images outside the benchmark subset (`eval_images(16, seed=1)`, as every tuning), noise as in the benchmark, the
shipped VAE, the targets' settings (`bench_settings.TARGET_SETTINGS`: 3 restarts, 40 rounds x 5 Adam steps, pruned
after a third; csgm 3 x 200 steps, the same generator passes). Shah & Hegde's eta = 1/||A||^2 is safe for the gradient
step but, as the projection pulls G(z) towards the previous x on every pixel the data do not see, slow: the table says
by how much.
"""
import os, time
from pathlib import Path
from genprior_nb.core import set_cpu_threads, read_csv, write_csv
from genprior_nb.data import eval_images
from genprior_nb.bench_settings import bench_operator, TARGET_SETTINGS, TARGET_LEVELS
from genprior_nb.pretrained import load_pretrained
from genprior_nb.latent_opt import csgm, pgd_gan
from genprior_nb.metrics import psnr

OUT = Path(__file__).resolve().parents[1]/'nbs'/'benchmarks'/'pgd_eta.csv'
COLUMNS = ('operator', 'level', 'method', 'eta', 'psnr_mean', 'seconds', 'images')
ETAS = (1, 2, 4, 8, 16, 32)

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    G = load_pretrained('vae-fmnist-8'); x = eval_images(16, seed=1)[0]
    rows = read_csv(OUT) if OUT.exists() else []
    done = {(r['operator'], float(r['level']), r['method'], r['eta']) for r in rows}
    for name, level in TARGET_LEVELS:
        op, noise = bench_operator(name, level); y = op.measure(x, noise, seed=0)
        for method, eta in [('csgm', None)] + [('pgd_gan', e) for e in ETAS]:
            if (name, float(level), method, eta) in done: continue
            t = time.time()
            r = (csgm(y, op, G, **TARGET_SETTINGS['csgm']) if method == 'csgm' else
                 pgd_gan(y, op, G, **dict(TARGET_SETTINGS['pgd_gan'], eta=eta)))
            rows.append(dict(operator=name, level=level, method=method, eta=eta, psnr_mean=round(psnr(r.x, x).mean().item(), 4),
                             seconds=round(time.time() - t, 1), images=len(x)))
            write_csv(OUT, rows, COLUMNS)
            print(rows[-1], flush=True)
