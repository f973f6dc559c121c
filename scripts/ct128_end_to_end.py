"""One sparse-angle CT reconstruction at 128x128 end to end: operator, a briefly trained generator, solver; time and memory.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/ct128_end_to_end.py      # writes nbs/benchmarks/ct128.json

Stages, each timed: build the 30-angle parallel-beam operator at 128x128; `genprior train` a VAE on 2,000 128x128
ellipse phantoms for 300 steps (width 8, latent 32); `load_model`; measure 16 held-out phantoms (noise 1% of each
sinogram's range); reconstruct with FBP, TV and the VAE (CSGM from the encoder of the FBP image plus one random
restart, then the soft constraint with TV, b = 0.3 and TV weight 2 lam x 0.5; lam is TV's weight, the best of a grid on 4
validation phantoms). Peak memory is the process's maximum resident set size.
"""
import os, sys, json, time, resource, tempfile
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ct64 import measure
from genprior_nb.core import set_cpu_threads, atomic_write_bytes
from genprior_nb.cli import main
from genprior_nb.data import eval_images, ellipses_dataset
from genprior_nb.operators import make_operator
from genprior_nb.pretrained import load_model
from genprior_nb.latent_opt import csgm, soft_constraint
from genprior_nb.baselines import tv_reconstruct
from genprior_nb.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
S, ANGLES, N = 128, 30, 16

def peak_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    rec, t = {'image_size': S, 'angles': ANGLES, 'images': N, 'threads': torch.get_num_threads(), 'torch': torch.__version__}, time.time()
    op = make_operator('tomo', ANGLES, (1, S, S)); x = eval_images(N, dataset='ellipses', image_size=S)[0]
    y = measure(op, x, 0.01); rec['operator_seconds'] = round(time.time() - t, 2); rec['operator_method'] = op.method
    out = Path(tempfile.mkdtemp())/'vae128'; t = time.time()
    cmd = ['train', '--model', 'vae', '--data', 'ellipses', '--image-size', str(S), '--latent-dim', '32', '--width', '8',
           '--likelihood', 'bernoulli', '--steps', '300', '--batch-size', '32', '--subset', '2000', '--out', str(out), '--no-progress']
    assert main(cmd) == 0
    rec['train_command'] = 'genprior ' + ' '.join(cmd[:-3] + ['--out', 'OUT'])
    rec['train_seconds'] = round(time.time() - t, 1)
    G = load_model(out)
    t = time.time(); x_fbp = op.fbp(y, 'hann').clamp(0, 1); rec['fbp_seconds'] = round(time.time() - t, 2)
    xv = ellipses_dataset(4, S, seed=2); yv = measure(op, xv, 0.01, seed=1)   # TV's weight: the best of a grid on 4 validation phantoms
    lam = max((0.03, 0.1, 0.3, 1.0), key=lambda l: float(psnr(tv_reconstruct(yv, op, l), xv).mean())); rec['tv_lam'] = lam
    t = time.time(); x_tv = tv_reconstruct(y, op, lam); rec['tv_seconds'] = round(time.time() - t, 1)
    z0 = torch.randn(N, 2, G.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(): z0[:, 0] = G.encode(x_fbp)
    t = time.time(); r = csgm(y, op, G, restarts=2, steps=150, lr=0.05, prune=1/3, init=z0); rec['csgm_seconds'] = round(time.time() - t, 1)
    t = time.time(); s = soft_constraint(y, op, G, b=0.3, tv=lam, restarts=1, warmup_steps=1, steps=60, init=r.z)
    rec['soft_tv_seconds'] = round(time.time() - t, 1)
    rec['psnr'] = {k: round(float(psnr(v.clamp(0, 1), x).mean()), 2) for k, v in
                   (('FBP (Hann)', x_fbp), ('TV', x_tv), ('VAE csgm', r.x), ('VAE soft constraint + TV', s.x))}
    rec['peak_rss_mb'] = round(peak_mb())
    print(json.dumps(rec, indent=1))
    atomic_write_bytes(ROOT/'nbs'/'benchmarks'/'ct128.json', json.dumps(rec, indent=1).encode())
