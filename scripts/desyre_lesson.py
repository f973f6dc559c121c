"""The numbers and figure of the DESYRE notebook's lesson: DESYRE against CSGM (VAE prior) and TV on a few images.

    OMP_NUM_THREADS=1 python scripts/desyre_lesson.py      # writes nbs/benchmarks/desyre/lesson*.csv, lesson_run.json, nbs/images/desyre_lesson.png

On the first 16 images of the benchmark subset (`eval_images(16)`; the tuning used other images), noise as in the
benchmark: the representation error (A = I, no noise) of the VAE (`range.representation_error`) against DESYRE's
D(E(x)); then every quality-target problem (`bench_settings.TARGET_LEVELS`) with DESYRE at its tuned settings
(`desyre.desyre_settings`), CSGM with the VAE at the targets' settings (`bench_settings.TARGET_SETTINGS`) and TV at
its tuned weight (`bench_settings.classical_settings`). Per image PSNRs go to lesson_images.csv, means with 95%
intervals and the paired DESYRE-minus-other difference to lesson.csv, and the DESYRE objective at the truth's
coefficients E(x) against the solution's to lesson_objective.csv.
"""
import os, json, time, platform
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, write_csv
from genprior_nb.data import eval_images, show_images
from genprior_nb.pretrained import load_pretrained
from genprior_nb.bench_settings import bench_operator, TARGET_LEVELS, TARGET_SETTINGS, classical_settings
from genprior_nb.bench_report import problem_label
from genprior_nb.baselines import baseline_reconstruct
from genprior_nb.latent_opt import csgm
from genprior_nb.range import representation_error
from genprior_nb.metrics import psnr, mean_ci
from genprior_nb.desyre import desyre, desyre_settings, load_desyre, desyre_card

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'nbs'/'benchmarks'/'desyre'
FIG_PROBLEM = ('inpaint', 0.25)

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    t_all = time.time()
    x = eval_images(16)[0]; n = len(x)
    G, net = load_pretrained('vae-fmnist-8'), load_desyre()
    per_image, objective, figure = [], [], None
    rep = representation_error(G, x).psnr
    with torch.no_grad(): rep_d = psnr(net.reconstruct(x), x)
    per_image += [dict(operator='identity', level=0, method=m, image=i, psnr=round(v, 4), seconds=0)
                  for m, p in (('csgm', rep), ('desyre', rep_d)) for i, v in enumerate(p.tolist())]
    for name, level in TARGET_LEVELS:
        op, noise = bench_operator(name, level); y = op.measure(x, noise, seed=0)
        out = {}
        t0 = time.time(); out['tv'] = (baseline_reconstruct(y, op, 'tv', **classical_settings('tv', name, level)), time.time() - t0)
        t0 = time.time(); out['csgm'] = (csgm(y, op, G, **TARGET_SETTINGS['csgm']).x, time.time() - t0)
        st = desyre_settings(name, level)
        t0 = time.time(); r = desyre(y, op, net, **st); out['desyre'] = (r.x, time.time() - t0)
        # the objective at the truth's coefficients E(x) against the solution's: which image does the model prefer?
        F = lambda xi: 0.5 * (op.A(net(xi)) - y).flatten(1).pow(2).sum(1) + st['alpha'] * net.penalty(xi)
        with torch.no_grad(): f_true, f_sol = F(net.encode(x)), F(r.z)
        objective.append(dict(operator=name, level=level, problem=problem_label(name, level), alpha=st['alpha'], init=st['init'],
                              f_truth=round(f_true.mean().item(), 4), f_solution=round(f_sol.mean().item(), 4),
                              solution_lower=round((f_sol < f_true).float().mean().item(), 4),
                              nonzero=round(r.extra['nonzero'].mean().item(), 4), steps_run=r.steps_run))
        for m, (xr, sec) in out.items():
            per_image += [dict(operator=name, level=level, method=m, image=i, psnr=round(v, 4), seconds=round(sec / n, 3))
                          for i, v in enumerate(psnr(xr, x).tolist())]
        if (name, level) == FIG_PROBLEM: figure = (y, out)
        print(name, level, {m: round(psnr(xr, x).mean().item(), 2) for m, (xr, _) in out.items()}, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    write_csv(OUT/'lesson_images.csv', per_image, list(per_image[0]))
    rows = []
    for name, level in [('identity', 0)] + list(TARGET_LEVELS):
        p = {m: torch.tensor([r['psnr'] for r in per_image if (r['operator'], r['level'], r['method']) == (name, level, m)])
             for m in ('tv', 'csgm', 'desyre')}
        for m, v in p.items():
            if not len(v): continue
            mu, ci = mean_ci(v)
            d = mean_ci(p['desyre'] - v) if m != 'desyre' else (float('nan'), float('nan'))
            rows.append(dict(operator=name, level=level, problem='representation (A = I, no noise)' if name == 'identity' else problem_label(name, level),
                             method=m, n=len(v), psnr_mean=round(mu, 3), psnr_ci=round(ci, 3),
                             desyre_minus=round(d[0], 3), desyre_minus_ci=round(d[1], 3),
                             seconds_per_image=[r['seconds'] for r in per_image if (r['operator'], r['level'], r['method']) == (name, level, m)][0]))
    write_csv(OUT/'lesson.csv', rows, list(rows[0]))
    write_csv(OUT/'lesson_objective.csv', objective, list(objective[0]))
    y, out = figure
    fig = show_images([x[:6]] + [out[m][0][:6] for m in ('tv', 'csgm', 'desyre')], row_labels=['truth', 'TV', 'CSGM (VAE)', 'DESYRE'], scale=0.8)
    fig.savefig(ROOT/'nbs'/'images'/'desyre_lesson.png', bbox_inches='tight', dpi=80)
    (OUT/'lesson_run.json').write_text(json.dumps({'images': n, 'image_seed': 0, 'noise': 'benchmark (0.05)', 'network': 'desyre-fmnist',
        'network_card_recon_psnr': desyre_card()['eval']['recon_psnr_mean'], 'figure_problem': list(FIG_PROBLEM),
        'seconds': round(time.time() - t_all, 1), 'threads': torch.get_num_threads(), 'torch': torch.__version__,
        'machine': platform.processor() or platform.machine()}, indent=1))
