"""CPU speed of `csgm` with its defaults before and after the GPU work of issue 19, in one process.

The package as it was at a git revision (default: 731fb2e, the commit that recorded the CPU reference results before any
change) is extracted into a temporary folder and imported under another name beside the current one. Both solve the
same images (Fashion-MNIST evaluation subset, VAE prior, compressed sensing m = 150, noise 0.05) with their defaults,
alternately (the order swapped every repeat), `--repeats` times each, on one torch thread; the results must be bitwise
equal. Writes nbs/benchmarks/cpu_before_after.csv (one row per run: wall and CPU seconds; the CPU time of the process is
the steadier measure on a shared machine) and prints the ratios of the best times.

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
    return tuple(importlib.import_module(f'{name}.{m}') for m in ('latent_opt', 'pretrained', 'operators'))

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
    old_lo, old_pre, old_ops = old_package(a.rev)
    x = eval_images(a.images)[0]
    op = CompressedSensing(150, seed=0); y = op.measure(x, 0.05, seed=0)
    old_op = old_ops.CompressedSensing(150, seed=0)   # each version's own classes; the same matrix
    assert torch.equal(old_op.matrix, op.matrix)
    solvers = {'before': (old_lo.csgm, old_pre.load_pretrained('vae-fmnist-8'), old_op),
               'after': (csgm, load_pretrained('vae-fmnist-8'), op)}
    print(machine_info(torch.device('cpu')))
    rows, out = [], {}
    for r in range(a.repeats):
        for version in (('before', 'after') if r % 2 == 0 else ('after', 'before')):   # alternating order
            solve, G, A = solvers[version]
            c, t = time.process_time(), time.perf_counter(); res = solve(y, A, G)
            sec, cpu = time.perf_counter() - t, time.process_time() - c
            out[version] = res.x
            rows.append(dict(version=version, rev=a.rev if version == 'before' else 'HEAD', repeat=r, images=a.images,
                             seconds=round(sec, 3), cpu_seconds=round(cpu, 3), images_per_s=a.images / sec,
                             psnr=psnr(res.x, x).mean().item()))
            print(rows[-1], flush=True)
    same = torch.equal(out['before'], out['after'])
    best = {(v, k): min(r[k] for r in rows if r['version'] == v) for v in solvers for k in ('seconds', 'cpu_seconds')}
    for r in rows: r['bitwise_equal'] = same
    write_csv(a.out, rows, list(rows[0]))
    for k in ('seconds', 'cpu_seconds'):
        print(f"best of {a.repeats} ({k}): before {best['before', k]:.1f}, after {best['after', k]:.1f}: "
              f"after/before speed {best['before', k] / best['after', k]:.3f}x")
    print(f"bitwise equal: {same} -> {a.out}")

if __name__ == '__main__': main()
