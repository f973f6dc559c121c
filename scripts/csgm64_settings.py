"""Which csgm settings close the gap to the naive reference protocol at 64x64: nbs/benchmarks/csgm64_settings.csv.

    OMP_NUM_THREADS=1 python scripts/csgm64_settings.py     # about 5 minutes on one CPU thread

Same problem and phantoms as `genprior bench reconstruct --generator vae-ellipses-32 wgan-ellipses-32`
(nbs/benchmarks/reconstruct64.csv): CS m = 150, noise 0.05, the first 3 evaluation phantoms; the batched csgm with its
defaults, then with more restarts and steps (lr and pruning as default). The naive protocol's PSNR is read from
reconstruct64.csv.
"""
from pathlib import Path
import time
from genprior_nb.core import set_cpu_threads, write_csv
from genprior_nb.data import eval_images
from genprior_nb.operators import CompressedSensing
from genprior_nb.pretrained import load_pretrained
from genprior_nb.latent_opt import csgm
from genprior_nb.metrics import psnr

OUT = Path(__file__).resolve().parents[1]/'nbs'/'benchmarks'/'csgm64_settings.csv'
SETTINGS = [(5, 300), (10, 300), (10, 1000), (20, 1000)]   # (restarts, steps); (5, 300) is csgm's default

if __name__ == '__main__':
    set_cpu_threads(1)
    rows = []
    for g in ('vae-ellipses-32', 'wgan-ellipses-32'):
        G = load_pretrained(g); shape = tuple(G.image_shape)
        x = eval_images(3, dataset='ellipses')[0]
        op = CompressedSensing(150, seed=0, in_shape=shape); y = op.measure(x, 0.05, seed=0)
        for r, s in SETTINGS:
            t = time.perf_counter(); res = csgm(y, op, G, seed=0, restarts=r, steps=s); sec = time.perf_counter() - t
            p = psnr(res.x, x)
            rows.append(dict(generator=g, restarts=r, steps=s, images=len(x), psnr_mean=round(p.mean().item(), 4),
                             psnr_images=' '.join(f'{v:.2f}' for v in p.tolist()), seconds=round(sec, 2)))
            print(rows[-1], flush=True)
    write_csv(OUT, rows, list(rows[0]))
