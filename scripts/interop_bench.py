"""genprior_nb inside deepinv, side by side: problems built in deepinv, solved by genprior_nb through the adapters,
by deepinv's own CSGMGenerator (same generator) and by deepinv's TV, with the same y for everyone.

Runs in the interop venv (deepinv), one torch thread, all methods in one process:
    OMP_NUM_THREADS=1 .venv-interop/bin/python scripts/interop_bench.py            # 64 images (31 min on 2 shared cores)
    OMP_NUM_THREADS=1 .venv-interop/bin/python scripts/interop_bench.py --n 4 --out /tmp/x   # a quick check
Writes interop.csv (one row per problem and method), interop_images.csv (per-image PSNR) and interop_run.json
into --out (default nbs/benchmarks/, read by nbs/20_interop.ipynb).
"""
import argparse, json, os, platform, sys, time, warnings
from pathlib import Path
import torch

warnings.filterwarnings('ignore', message='.*normalize.*')   # deepinv's Tomography warns unless normalize is given (it is)

# genprior_nb is run with its csgm defaults and with a fast setting selected on n_tune other evaluation images (the
# 16 after the first 64): of these candidates, the one with the fewest generator passes per image whose mean PSNR
# there is at least deepinv's CSGM (defaults) on every problem (interop_select.csv has the selection run).
DEFAULTS = ('genprior_nb, CSGM (defaults)', {}, 'optimizer=adam, restarts=5, steps=300, lr=0.05, prune=0.2, lam=0, all images in one batch')
CANDIDATES = [dict(optimizer='lbfgs', restarts=r, steps=s, lam=lam) for r, s, lam in
              [(3, 30, 0.0), (3, 30, 0.01), (3, 30, 0.03), (5, 30, 0.03), (3, 50, 0.03), (5, 50, 0.03)]]
FAST = 'genprior_nb, CSGM L-BFGS (fast)'   # speed-ups and paired differences are against this row

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=64, help='first n evaluation images')
    ap.add_argument('--n_tune', type=int, default=16, help='further evaluation images on which the TV weight is chosen')
    ap.add_argument('--noise', type=float, default=0.05, help='std of the Gaussian noise')
    ap.add_argument('--generator', default='vae-fmnist-8', help='shipped generator')
    ap.add_argument('--out', default='nbs/benchmarks', help='output folder')
    a = ap.parse_args()
    torch.set_num_threads(1)
    import deepinv as dinv
    from genprior_nb.core import write_csv
    from genprior_nb.data import eval_images
    from genprior_nb.metrics import psnr, mean_ci
    from genprior_nb.pretrained import load_pretrained
    from genprior_nb.interop import GenerativeReconstructor, DeepinvGenerator, from_deepinv

    t_start = time.time()
    G = load_pretrained(a.generator)
    xs = eval_images(a.n + a.n_tune)[0]
    x, x_tune = xs[:a.n], xs[a.n:]
    passes = [0]   # generator image-passes (rows through the decoder), to compare budgets
    G.decoder.register_forward_hook(lambda m, i, o: passes.__setitem__(0, passes[0] + len(o)))
    gen = lambda s: torch.Generator().manual_seed(s)
    problems = {
        'inpainting, 10% of the pixels': lambda: dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.1, rng=gen(0),
                                                                        noise_model=dinv.physics.GaussianNoise(a.noise, rng=gen(1))),
        'tomography, 10 angles': lambda: dinv.physics.Tomography(angles=10, img_width=28, normalize=True,
                                                                 noise_model=dinv.physics.GaussianNoise(a.noise, rng=gen(1))),
    }
    def timed(fn):
        "Run fn(); return its result, wall seconds, CPU seconds and generator passes."
        passes[0] = 0; w, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w, time.process_time() - c, passes[0]

    def per_image_csgm(model, y, physics, seed0):
        "deepinv's CSGMGenerator optimises one code for the whole batch: one image at a time, seeded."
        outs = []
        for i in range(len(y)):
            torch.manual_seed(seed0 + i); outs.append(model(y[i:i + 1], physics))
        return torch.cat(outs)

    def tv_model(lam):
        return dinv.optim.PGD(prior=dinv.optim.TVPrior(n_it_max=20), data_fidelity=dinv.optim.L2(), stepsize=1.0,
                              lambda_reg=lam, max_iter=300, early_stop=True, thres_conv=1e-5)

    # 1. selection on the n_tune other images: genprior_nb's candidates against deepinv's CSGM (defaults)
    sel = []
    for pname, make in problems.items():
        physics = make(); y_tune = physics(x_tune)
        d_def = dinv.models.CSGMGenerator(DeepinvGenerator(G)).eval()
        xh, _, cpu, npass = timed(lambda: per_image_csgm(d_def, y_tune, physics, 2000))
        sel.append({'problem': pname, 'method': 'deepinv CSGMGenerator (defaults)', 'settings': '', 'psnr': psnr(xh, x_tune).mean().item(),
                    'cpu_sec_per_image': cpu / a.n_tune, 'passes_per_image': npass / a.n_tune})
        for i, kw in enumerate(CANDIDATES):
            xh, _, cpu, npass = timed(lambda: GenerativeReconstructor(G, 'csgm', **kw)(y_tune, physics))
            sel.append({'problem': pname, 'method': f'candidate {i}', 'settings': ', '.join(f'{k}={v}' for k, v in kw.items()),
                        'psnr': psnr(xh, x_tune).mean().item(), 'cpu_sec_per_image': cpu / a.n_tune, 'passes_per_image': npass / a.n_tune})
        print(f"== selection, {pname}: " + '; '.join(f"{r['method']} {r['psnr']:.2f} dB {r['passes_per_image']:.0f} passes" for r in sel if r['problem'] == pname), flush=True)
    target = {r['problem']: r['psnr'] for r in sel if r['method'].startswith('deepinv')}
    ok = [i for i in range(len(CANDIDATES)) if all(r['psnr'] >= target[r['problem']] for r in sel if r['method'] == f'candidate {i}')]
    cost = lambda i: sum(r['passes_per_image'] for r in sel if r['method'] == f'candidate {i}')
    chosen = min(ok, key=cost) if ok else None
    for r in sel: r['chosen'] = r['method'] == f'candidate {chosen}'
    GENPRIOR = [DEFAULTS] if chosen is None else [(FAST, CANDIDATES[chosen], ', '.join(f'{k}={v}' for k, v in CANDIDATES[chosen].items())
                                                   + f' (selected on {a.n_tune} other images), all images in one batch'), DEFAULTS]
    REF = GENPRIOR[0][0]
    print(f"== fast setting: {GENPRIOR[0]}", flush=True)

    # 2. the comparison on the first n images
    rows, images, tv_grid = [], [], {}
    for pname, make in problems.items():
        physics = make(); y = physics(x)
        y_tune = make()(x_tune)
        op = from_deepinv(physics)
        print(f"== {pname}: y {tuple(y.shape)}, ||A|| = {op.norm():.4f}, noise {op.noise_std:.3g}", flush=True)
        res = {}
        for label, kw, note in GENPRIOR:
            model = GenerativeReconstructor(G, 'csgm', **kw)
            res[label] = timed(lambda: model(y, physics)) + (note,)
            print(f"   {label}: {res[label][2] / a.n:.3f} CPU s/image, {res[label][3] / a.n:.0f} passes/image", flush=True)
        d_def = dinv.models.CSGMGenerator(DeepinvGenerator(G)).eval()
        res['deepinv CSGMGenerator (defaults)'] = timed(lambda: per_image_csgm(d_def, y, physics, 1000)) + (
            f'inf_max_iter={d_def.inf_max_iter}, inf_tol={d_def.inf_tol:g}, inf_lr={d_def.inf_lr:g}, one image at a time',)
        for label, _, _ in GENPRIOR:   # deepinv with the generator passes per image that each genprior_nb setting spent
            budget = round(res[label][3] / a.n)
            d_mat = dinv.models.CSGMGenerator(DeepinvGenerator(G), inf_max_iter=budget).eval()
            res[f'deepinv CSGMGenerator ({budget} steps)'] = timed(lambda: per_image_csgm(d_mat, y, physics, 1000)) + (
                f'inf_max_iter={budget} (the passes per image of {label}), inf_tol={d_mat.inf_tol:g}, inf_lr={d_mat.inf_lr:g}',)
        # TV: the weight with the best mean PSNR on n_tune other evaluation images
        grid = {lam: psnr(tv_model(lam)(y_tune, physics).clamp(0, 1), x_tune).mean().item() for lam in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)}
        lam = max(grid, key=grid.get); tv_grid[pname] = {'grid': grid, 'chosen': lam}
        tv = tv_model(lam)
        res['deepinv TV (PGD + TVPrior)'] = timed(lambda: tv(y, physics)) + (f'lambda={lam:g} (best of {sorted(grid)} on {a.n_tune} other images), '
                                                                              'stepsize 1/||A||^2, max_iter=300, TVPrior n_it_max=20',)
        ref = psnr(res[REF][0].clamp(0, 1), x); ref_cpu, ref_wall = res[REF][2], res[REF][1]
        for method, (xh, wall, cpu, npass, settings) in res.items():
            p = psnr(xh.clamp(0, 1), x)
            m, ci = mean_ci(p); d, dci = mean_ci(p - ref)
            rows.append({'problem': pname, 'method': method, 'n': a.n, 'psnr': round(m, 3), 'psnr_ci': round(ci, 3),
                         'diff_vs_ref': round(d, 3), 'diff_ci': round(dci, 3) if dci == dci else None,
                         'cpu_sec_per_image': round(cpu / a.n, 4), 'wall_sec_per_image': round(wall / a.n, 4),
                         'ref_speedup_cpu': round(cpu / ref_cpu, 2), 'ref_speedup_wall': round(wall / ref_wall, 2),
                         'passes_per_image': round(npass / a.n, 1), 'settings': settings})
            images += [{'problem': pname, 'method': method, 'image': i, 'psnr': round(v, 4)} for i, v in enumerate(p.tolist())]
            print(f"   {method:40s} {m:6.2f} ± {ci:.2f} dB  {cpu / a.n:7.3f} CPU s/image  {wall / a.n:7.3f} wall s/image  "
                  f"{npass / a.n:7.1f} passes/image  x{cpu / ref_cpu:.1f}", flush=True)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    write_csv(out/'interop.csv', rows, list(rows[0]))
    write_csv(out/'interop_images.csv', images, list(images[0]))
    write_csv(out/'interop_select.csv', [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in sel], list(sel[0]))
    run = {'command': ' '.join([Path(sys.executable).name] + sys.argv), 'reference': REF, 'n': a.n, 'n_tune': a.n_tune, 'noise': a.noise,
           'generator': a.generator, 'threads': torch.get_num_threads(), 'torch': torch.__version__, 'deepinv': dinv.__version__,
           'python': platform.python_version(), 'cpus': os.cpu_count(), 'load_average_at_end': os.getloadavg(),
           'tv_weights': tv_grid, 'total_seconds': round(time.time() - t_start, 1),
           'date': time.strftime('%Y-%m-%d %H:%M:%S')}
    (out/'interop_run.json').write_text(json.dumps(run, indent=1))
    print(f"wrote {out/'interop.csv'} in {time.time() - t_start:.0f} s")

if __name__ == '__main__':
    main()
