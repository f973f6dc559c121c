"""PGD-GAN's convergence and cost against csgm, on the first 16 evaluation images (noise 0.05, shipped VAE).

    OMP_NUM_THREADS=1 nohup python scripts/pgd_convergence.py > runs/pgd_convergence.log 2>&1 &

For 25% inpainting, compressed sensing with m = 50 and 10-angle tomography: csgm with its defaults, and pgd_gan with
its defaults (60 rounds x 5 steps) and with 5, 10, 20 and 40 rounds (the same schedule compressed), recording mean
PSNR, mean data misfit and generator passes per image. Writes nbs/benchmarks/pgd_convergence.csv (resumable: finished
rows are kept).
"""
import os, time
from pathlib import Path
from genprior_nb.core import set_cpu_threads, read_csv, write_csv
from genprior_nb.data import eval_images
from genprior_nb.operators import make_operator
from genprior_nb.pretrained import load_pretrained
from genprior_nb.latent_opt import csgm, pgd_gan
from genprior_nb.metrics import psnr, data_misfit

OUT = Path(__file__).resolve().parents[1]/'nbs'/'benchmarks'/'pgd_convergence.csv'
COLUMNS = ('operator', 'level', 'method', 'outer', 'inner', 'passes_per_image', 'psnr_mean', 'misfit_mean', 'seconds', 'images')

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    G = load_pretrained('vae-fmnist-8'); x = eval_images(16)[0]
    rows = read_csv(OUT) if OUT.exists() else []
    done = {(r['operator'], float(r['level']), r['method'], r['outer']) for r in rows}
    for name, level in (('inpaint', 0.25), ('cs', 50), ('tomo', 10)):
        op = make_operator(name, level); y = op.measure(x, 0.05, seed=0)
        runs = [('csgm', None)] + [('pgd_gan', o) for o in (5, 10, 20, 40, 60)]
        for method, outer in runs:
            key = (name, float(level), method, outer if outer is not None else None)
            if (name, float(level), method, outer) in done or (method == 'csgm' and (name, float(level), 'csgm', None) in done): continue
            t = time.time()
            r = csgm(y, op, G) if method == 'csgm' else pgd_gan(y, op, G, outer=outer)
            passes = 5 * 60 + 240 if method == 'csgm' else r.extra['passes_per_image']
            rows.append(dict(operator=name, level=level, method=method, outer=outer, inner=None if method == 'csgm' else 5,
                             passes_per_image=passes, psnr_mean=psnr(r.x, x).mean().item(),
                             misfit_mean=data_misfit(op, r.x, y).mean().item(), seconds=round(time.time() - t, 1), images=len(x)))
            write_csv(OUT, rows, COLUMNS)
            print(rows[-1], flush=True)
