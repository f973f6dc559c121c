"""Training and latent-solve benchmarks of the training notebook (nbs/06_train.ipynb), on this machine's CPU:

  precision: bf16 autocast against float32, side by side in one process (alternating runs):
             training speed (images/s) and reconstruction PSNR after a fixed number of steps (AE, VAE; 2 seeds each),
             WGAN-GP training speed, and csgm with the shipped VAE on 64 evaluation images (speed and PSNR)
             -> nbs/benchmarks/train_precision.csv
  scaling:   1 process (1 and 2 CPU threads) against 2 processes x 1 thread (DDP, gloo, started by torchrun), for each
             model, with the bytes all-reduced per step -> nbs/benchmarks/train_scaling.csv

python scripts/bench_train.py [precision|scaling|all] [--quick]     (--quick: a tiny smoke run, written under out/)
"""
import os, sys, json, time, argparse, subprocess, platform
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parent.parent
PREC_COLS = ['task', 'model', 'precision', 'seed', 'steps', 'batch', 'images', 'seconds', 'images_per_s', 'psnr', 'threads']
SCALE_COLS = ['model', 'processes', 'threads_per_process', 'global_batch', 'steps', 'images', 'seconds', 'images_per_s',
              'speedup', 'allreduce_bytes_per_step', 'params']

def _train_one(model, precision, seed, steps, batch, data, threads):
    "Train one AE/VAE (latent 8, width 64) and return its row: speed and reconstruction PSNR on the 256 evaluation images."
    from genprior_nb.vae import AE, VAE, train_autoencoder
    from genprior_nb.data import eval_images
    from genprior_nb.metrics import psnr
    torch.manual_seed(seed)
    m = (AE if model == 'ae' else VAE)(8, 64)
    h = train_autoencoder(m, data, steps=steps, batch_size=batch, seed=seed, precision=precision, progress=False, log_every=steps)
    x, _ = eval_images(256)
    with torch.no_grad(): p = psnr(m.eval().reconstruct(x).clamp(0, 1), x).mean().item()   # evaluated in float32
    return dict(task='train', model=model, precision=precision, seed=seed, steps=steps, batch=batch, images=steps*batch,
                seconds=round(h['seconds'], 3), images_per_s=round(steps*batch/h['seconds'], 2), psnr=round(p, 4), threads=threads)

def _train_wgan(precision, steps, batch, data, threads):
    from genprior_nb.wgan import WGANGenerator, Critic, train_wgan
    torch.manual_seed(0)
    G, D = WGANGenerator(8, 64), Critic(32)
    h = train_wgan(G, D, data, steps=steps, batch_size=batch, precision=precision, progress=False, log_every=steps)
    n = steps*5*batch   # real images the critic saw (5 critic steps per generator step)
    return dict(task='train', model='wgan', precision=precision, seed=0, steps=steps, batch=batch, images=n,
                seconds=round(h['seconds'], 3), images_per_s=round(n/h['seconds'], 2), psnr=None, threads=threads)

def _csgm(precision, n, threads, reps=2):
    "csgm (default settings) with the shipped VAE, inpainting 25% of the pixels with noise 0.05; the best of `reps` timings."
    from genprior_nb.pretrained import load_pretrained
    from genprior_nb.generators import autocast_generator
    from genprior_nb.operators import make_operator
    from genprior_nb.latent_opt import csgm
    from genprior_nb.data import eval_images
    from genprior_nb.metrics import psnr
    x, _ = eval_images(n)
    op = make_operator('inpaint', 0.25)
    y = op.measure(x, 0.05, seed=0)
    G = autocast_generator(load_pretrained('vae-fmnist-8'), precision)
    best, p = None, None
    for _ in range(reps):
        t = time.time(); res = csgm(y, op, G); s = time.time() - t
        best = s if best is None else min(best, s)
        p = psnr(res.x.clamp(0, 1), x).mean().item()
    return dict(task='csgm', model='vae-fmnist-8', precision=precision, seed=0, steps=300, batch=n, images=n,
                seconds=round(best, 3), images_per_s=round(n/best, 3), psnr=round(p, 4), threads=threads)

def precision_bench(out, quick):
    from genprior_nb.core import write_csv
    from genprior_nb.data import load_dataset
    torch.set_num_threads(1)
    rows, path = [], out/'train_precision.csv'
    data = load_dataset('fmnist', 'train')[0]
    steps, batch, seeds = (3, 16, (0,)) if quick else (200, 64, (0, 1))
    for model in ('ae', 'vae'):
        for seed in seeds:
            for prec in ('fp32', 'bf16'):   # alternating, so that both see the same machine load
                rows.append(_train_one(model, prec, seed, steps, batch, data, 1)); write_csv(path, rows, PREC_COLS); print(rows[-1], flush=True)
    for prec in ('fp32', 'bf16', 'fp32', 'bf16'):
        rows.append(_train_wgan(prec, 2 if quick else 10, batch, data, 1)); write_csv(path, rows, PREC_COLS); print(rows[-1], flush=True)
    for prec in ('fp32', 'bf16'):
        rows.append(_csgm(prec, 4 if quick else 64, 1, reps=1 if quick else 2)); write_csv(path, rows, PREC_COLS); print(rows[-1], flush=True)

# ---------------------------------------------------------------- scaling: 1 vs 2 processes

def worker(model, steps, batch, out_json):
    "Under torchrun (or alone): warm up, then time `steps` training steps of `model` with a global batch of `batch`."
    from genprior_nb.train import init_distributed, dist_rank, close_distributed
    from genprior_nb.data import load_dataset
    from genprior_nb.vae import AE, VAE, train_autoencoder
    from genprior_nb.wgan import WGANGenerator, Critic, train_wgan
    init_distributed('cpu')
    data = load_dataset('fmnist', 'train')[0][:6400]
    def run(n):
        torch.manual_seed(0)
        if model == 'wgan':
            G, D = WGANGenerator(8, 64), Critic(32)
            return train_wgan(G, D, data, steps=n, batch_size=batch, progress=False, log_every=n)['seconds'], [G, D]
        m = (AE if model == 'ae' else VAE)(8, 64)
        return train_autoencoder(m, data, steps=n, batch_size=batch, progress=False, log_every=n)['seconds'], [m]
    run(1)   # warm-up: DDP's first construction imports torch._dynamo, the first steps allocate
    s, ms = run(steps)
    if dist_rank() == 0:
        Path(out_json).write_text(json.dumps({'seconds': s, 'params': [sum(p.numel() for p in m.parameters()) for m in ms]}))
    close_distributed()

def scaling_bench(out, quick):
    from genprior_nb.core import write_csv
    rows, path = [], out/'train_scaling.csv'
    batch = 32 if quick else 128
    tmp = out/'scaling_worker.json'
    for model in ('ae', 'vae', 'wgan'):
        steps = (2 if quick else 4) if model == 'wgan' else (2 if quick else 12)
        base = None
        for procs, threads in ((1, 1), (1, 2), (2, 1)):
            env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'GENPRIOR_THREADS': str(threads), 'GLOO_SOCKET_IFNAME': 'lo'}
            cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(procs),
                   __file__, '--worker', model, str(steps), str(batch), str(tmp)]
            subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            r = json.loads(tmp.read_text()); tmp.unlink()
            n = steps*batch*(5 if model == 'wgan' else 1)   # images per step: the WGAN's critic sees 5 real batches
            ips = n/r['seconds']; base = base or ips
            # bytes all-reduced per step (float32 gradients; the WGAN: 5 critic steps and one generator step), with 2 processes
            p = r['params']
            comm = 4*(5*p[1] + p[0]) if model == 'wgan' else 4*p[0]
            rows.append(dict(model=model, processes=procs, threads_per_process=threads, global_batch=batch, steps=steps, images=n,
                             seconds=round(r['seconds'], 3), images_per_s=round(ips, 2), speedup=round(ips/base, 3),
                             allreduce_bytes_per_step=comm if procs > 1 else 0, params=sum(p)))
            write_csv(path, rows, SCALE_COLS); print(rows[-1], flush=True)

def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        torch.set_num_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
        return worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=('precision', 'scaling', 'all'), nargs='?', default='all')
    ap.add_argument('--quick', action='store_true', help='a tiny smoke run, written under out/bench_train_quick')
    a = ap.parse_args()
    out = ROOT/('out/bench_train_quick' if a.quick else 'nbs/benchmarks'); out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if a.what in ('precision', 'all'): precision_bench(out, a.quick)
    if a.what in ('scaling', 'all'): scaling_bench(out, a.quick)
    run = {'what': a.what, 'torch': torch.__version__, 'cpu': platform.processor() or platform.machine(), 'cores': os.cpu_count(),
           'load_average_at_end': os.getloadavg(), 'minutes': round((time.time() - t0)/60, 1),
           'note': 'other jobs shared the 2 cores during the run; timings are noisy (ratios come from alternating runs)'}
    from genprior_nb.core import atomic_write_bytes
    atomic_write_bytes(out/f'train_bench_{a.what}_run.json', json.dumps(run, indent=1).encode())

if __name__ == '__main__': main()
