"""CPU speed of `csgm` with its defaults before and after the GPU work of issue 19, in one process.

The package as it was at a git revision (default: 731fb2e, the commit that recorded the CPU reference results before any
change) is extracted into a temporary folder and imported under another name beside the current one. Both solve the
same images (Fashion-MNIST evaluation subset, VAE prior, compressed sensing m = 150, noise 0.05) with their defaults,
alternately, `--repeats` times each, on one torch thread; the results must be bitwise equal. Writes
nbs/benchmarks/cpu_before_after.csv (one row per run) and prints the ratio of the best times.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/cpu_before_after.py --images 64 --repeats 2
"""
import argparse, importlib, io, subprocess, sys, tarfile, tempfile, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]

def old_package(rev:str, name:str='genprior_before'):
    "Import genprior_nb as it was at `rev` under the name `name` (its imports are relative, so they stay inside it)."
    tmp = Path(tempfile.mkdtemp())
    tar = subprocess.run(['git', '-C', str(ROOT), 'archive', rev, 'genprior_nb'], check=True, capture_output=True).stdout
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(tmp)
    (tmp/'genprior_nb').rename(tmp/name)
    sys.path.insert(0, str(tmp))
    return importlib.import_module(f'{name}.latent_opt'), importlib.import_module(f'{name}.pretrained')

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rev', default='731fb2e', help='git revision of the "before" package')
    ap.add_argument('--images', type=int, default=64)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--out', default=str(ROOT/'nbs'/'benchmarks'/'cpu_before_after.csv'))
    a = ap.parse_args()
    torch.set_num_threads(1)
    from genprior_nb.latent_opt import csgm
    from genprior_nb.pretrained import load_pretrained
    from genprior_nb.operators import CompressedSensing
    from genprior_nb.data import eval_images
    from genprior_nb.metrics import psnr
    from genprior_nb.core import write_csv
    from genprior_nb.bench import machine_info
    old_lo, old_pre = old_package(a.rev)
    x = eval_images(a.images)[0]
    op = CompressedSensing(150, seed=0); y = op.measure(x, 0.05, seed=0)
    solvers = {'before': (old_lo.csgm, old_pre.load_pretrained('vae-fmnist-8')), 'after': (csgm, load_pretrained('vae-fmnist-8'))}
    print(machine_info(torch.device('cpu')))
    rows, out = [], {}
    for r in range(a.repeats):
        for version, (solve, G) in solvers.items():
            t = time.perf_counter(); res = solve(y, op, G); sec = time.perf_counter() - t
            out[version] = res.x
            rows.append(dict(version=version, rev=a.rev if version == 'before' else 'HEAD', repeat=r, images=a.images,
                             seconds=round(sec, 3), images_per_s=a.images / sec, psnr=psnr(res.x, x).mean().item()))
            print(rows[-1], flush=True)
    same = torch.equal(out['before'], out['after'])
    best = {v: min(r['seconds'] for r in rows if r['version'] == v) for v in solvers}
    for r in rows: r['bitwise_equal'] = same
    write_csv(a.out, rows, list(rows[0]))
    print(f"bitwise equal: {same}; best of {a.repeats}: before {best['before']:.1f} s, after {best['after']:.1f} s, "
          f"after/before speed {best['before'] / best['after']:.3f}x -> {a.out}")

if __name__ == '__main__': main()
