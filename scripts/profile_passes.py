"""Generator passes against the matmul peak: nbs/benchmarks/pass_profile.csv (whole passes) and pass_layers.csv (layers).

    OMP_NUM_THREADS=1 python scripts/profile_passes.py          # on a quiet machine: about 5 minutes on one CPU thread

For each generator and batch of codes, one pass (forward, then backward to the codes, weights frozen, as every solver
runs it) is timed eager, eager in channels-last memory format, and through torch.compile (`csgm(compile=True)`), with
`bench.pass_profile`; the matmul peak is measured in the same process before and after, and the higher of the two is
the reference (the conservative fraction). The layer rows are those of the eager 256-code passes.
"""
import platform, time
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, write_csv
from genprior_nb.bench import pass_profile, matmul_gflops, PROFILE_COLUMNS
from genprior_nb.pretrained import load_pretrained

OUT = Path(__file__).resolve().parents[1]/'nbs'/'benchmarks'
GENERATORS = ('vae-fmnist-8', 'wgan-fmnist-8', 'vae-ellipses-32', 'wgan-ellipses-32')
N_CODES = (64, 256)
VARIANTS = {'eager': dict(), 'channels_last': dict(channels_last=True), 'compiled': dict(compile=True)}
COLUMNS = ('generator', 'image_shape', 'n_codes', 'variant', 'pass_ms', 'pass_mflop', 'pass_gflops', 'peak_gflops', 'pass_fraction',
           'bound_fraction', 'machine')

def main():
    set_cpu_threads(1)
    machine = f"{platform.processor() or platform.machine()}, 1 thread, torch {torch.__version__}"
    peaks = [matmul_gflops()]
    runs, layers = [], []
    for g in GENERATORS:
        G = load_pretrained(g)
        for n in N_CODES:
            for v, kw in VARIANTS.items():
                t0 = time.time(); p = pass_profile(G, n_codes=n, repeat=7, peak=1.0, **kw)
                runs.append(dict(generator=g, image_shape='x'.join(map(str, G.image_shape)), n_codes=n, variant=v, pass_ms=p['pass_ms'],
                                 pass_mflop=p['pass_mflop'], pass_gflops=p['pass_gflops'], bound_fraction=p['bound_fraction'], machine=machine))
                if v == 'eager' and n == 256: layers += [dict(r, generator=g) for r in p['rows']]
                print(f"{g} {n} {v}: {p['pass_ms']:.1f} ms, {p['pass_gflops']:.1f} GFLOP/s ({time.time() - t0:.0f} s)", flush=True)
    peaks.append(matmul_gflops())
    peak = max(peaks)
    for r in runs: r.update(peak_gflops=peak, pass_fraction=r['pass_gflops'] / peak, bound_fraction=r['bound_fraction'] / peak)
    for r in layers: r.update(peak_fraction=r['gflops'] / peak)
    write_csv(OUT/'pass_profile.csv', [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in runs], COLUMNS)
    write_csv(OUT/'pass_layers.csv', [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in layers],
              ('generator', *PROFILE_COLUMNS))
    print(f"matmul peak {peaks[0]:.1f} then {peaks[1]:.1f} GFLOP/s; wrote {OUT/'pass_profile.csv'} and pass_layers.csv")

if __name__ == '__main__':
    main()
