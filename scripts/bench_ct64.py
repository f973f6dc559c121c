"""Sparse-angle tomography at 64x64 on 256 held-out ellipse phantoms: FBP, Tikhonov, TV and the shipped 64x64 CT priors.

    OMP_NUM_THREADS=1 nohup .venv/bin/python scripts/bench_ct64.py > runs/bench_ct64.log 2>&1 &
    .venv/bin/python scripts/bench_ct64.py --report      # tables from the cells done so far
    .venv/bin/python scripts/bench_ct64.py --classical   # FBP, Tikhonov and TV only (minutes)
    ... scripts/bench_ct64.py --desyre-only --problems tomo-10   # only DESYRE's cells of some problems, beside a full run

Problems: parallel-beam tomography with 10, 20 and 30 angles over [0, 180) degrees and 30 angles over [0, 90)
(limited angle), Gaussian noise of 1% and 5% of each sinogram's range (experiments `ct64-noise1`, `ct64-noise5`).
Images: `eval_images(256, dataset='ellipses')`, test-split phantoms (seed 1), held out from the training split (seed 0).
Weights are tuned per problem on 16 validation phantoms of a third seed (2): FBP's filter, Tikhonov's and TV's weight
from a grid, the sparse deviation's l1 weight and the soft constraint's b (and its TV weight) from grids run as one
batch from one shared CSGM warm-up (weights per image), as scripts/tune_soft_tv.py does.

The prior methods share one CSGM run per problem and generator: `csgm` is that run; the sparse deviation and the soft
constraint (with and without TV) continue from its best code (their warm-up), and their time includes it. Each restart
set holds one start from the encoder of the FBP image (VAE) and random N(0, I) draws.

Deep synthesis regularisation (`desyre`, with the shipped 64x64 network `desyre-ellipses` when it exists) starts from
the Hann-filtered back-projection (the paper's start) or from TV, whichever the tuning prefers, and runs 150 FISTA
iterations; its start and alpha are tuned together as one batch, its time includes the start.

One CSV per finished cell in nbs/benchmarks/ct64/cells/ (the format of `genprior bench quality`), so the script resumes
where it stopped; then quality.csv and paired.csv (`bench_report.aggregate`, `paired_comparison`) and tuning.csv.
"""
import os, time, json
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, read_csv, write_csv
from genprior_nb.data import eval_images, ellipses_dataset
from genprior_nb.operators import make_operator
from genprior_nb.pretrained import load_pretrained, list_pretrained
from genprior_nb.latent_opt import csgm, sparse_deviation, soft_constraint
from genprior_nb.baselines import tikhonov, tv_reconstruct
from genprior_nb.desyre import desyre, load_desyre, list_desyre
from genprior_nb.metrics import psnr, ssim
from genprior_nb.bench import CELL_COLUMNS
from genprior_nb.bench_settings import Cell
from genprior_nb.bench_report import aggregate, paired_comparison, paired_table, table_rows
from genprior_nb.metrics import format_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'nbs'/'benchmarks'/'ct64'
SIZE, N_IMAGES, N_VAL = 64, 256, 16
PROBLEMS = [('tomo', 10), ('tomo', 20), ('tomo', 30), ('limited_tomo', 90)]
NOISES = (0.01, 0.05)                  # std as a fraction of each sinogram's range
GENERATORS = ('vae-ellipses-32', 'wgan-ellipses-32')
CSGM = dict(steps=120, lr=0.05, prune=1/3)      # restarts: 2 (VAE: FBP-encoder start + 1 prior draw), 3 (WGAN)
JOINT_STEPS = 50
DESYRE_NET, DESYRE_STEPS = 'desyre-ellipses', 150   # deep synthesis regularisation: the shipped 64x64 network, FISTA iterations
DESYRE_ALPHAS = tuple(10**(-e/2) for e in range(-1, 10))   # 3.2 ... 1e-4.5, half decades; every alpha and start in one batch
# (the grid first stopped at 0.1, where 5% noise at 10 angles put its best: the edge; tomo-10-noise1's interior best, 0.032,
#  comes from that shorter grid)
GRIDS = {'fbp': ('ramp', 'hann'), 'tikhonov': (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
         'tv': (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0), 'sparse_deviation': (0.003, 0.03, 0.3, 3.0),
         'soft_b': (0.03, 0.3, 3.0), 'soft_tv_factor': (0.25, 0.5, 1.0)}

def operator(name, level):
    return make_operator(name, level, (1, SIZE, SIZE))

def measure(op, x, frac, seed=0):
    "y = A x + e, e Gaussian with std `frac` x (max - min) of each image's clean sinogram; seeded."
    y0 = op.A(x)
    r = (y0.flatten(1).amax(1) - y0.flatten(1).amin(1)).view(-1, *[1]*(y0.ndim - 1))
    return y0 + frac * r * torch.randn(y0.shape, generator=torch.Generator().manual_seed(seed)).to(y0)

def starts(G, y, op, restarts, seed=0):
    "Starting codes (B, R, k): restart 0 from the encoder of the FBP image when G has one, the rest N(0, I)."
    z = torch.randn(len(y), restarts, G.latent_dim, generator=torch.Generator().manual_seed(seed))
    if getattr(G, 'has_encoder', False):
        with torch.no_grad(): z[:, 0] = G.encode(op.fbp(y, 'hann').clamp(0, 1))
    return z

def restarts_of(G): return 2 if getattr(G, 'has_encoder', False) else 3

def prior_methods(g):
    "The methods run with generator `g`: all four with the VAE, CSGM and the sparse deviation with the WGAN-GP."
    return ('csgm', 'sparse_deviation') + (('soft_constraint', 'soft_constraint_tv') if g.startswith('vae') else ())

def classical(method, y, op, w):
    if method == 'fbp': return op.fbp(y, w).clamp(0, 1)
    if method == 'tikhonov': return tikhonov(y, op, w)
    return tv_reconstruct(y, op, w)

def prior_run(method, y, op, G, warm, w):
    "Continue from the CSGM warm-up `warm` with one method; w = weight (sparse deviation) or (b, tv) (soft constraint)."
    kw = dict(restarts=1, warmup_steps=1, steps=JOINT_STEPS, init=warm.z)
    if method == 'sparse_deviation': return sparse_deviation(y, op, G, weight=w, lr=CSGM['lr'], **kw)
    b, tv = w
    return soft_constraint(y, op, G, b=b, tv=tv, **kw)

def tune(name, level, frac, tuning, gens, nets=None):
    "Best weights per method on the validation phantoms; rows appended to `tuning`."
    key = f"{name}-{level:g}-noise{round(frac*100)}"
    done = {(r['method'], r['generator']): r for r in tuning if r['problem'] == key and r['best']}
    op = operator(name, level); x = ellipses_dataset(N_VAL, SIZE, seed=2); y = measure(op, x, frac, seed=1)
    best = {}
    def record(method, gen, grid, scores):
        i = max(range(len(grid)), key=lambda j: scores[j])
        if len(grid) > 2 and (i == 0 or i == len(grid) - 1): print(f"{key} {method} {gen}: best weight {grid[i]} is at the grid's edge", flush=True)
        for j, (w, s) in enumerate(zip(grid, scores)):
            tuning.append(dict(problem=key, method=method, generator=gen, weight=json.dumps(w), psnr_mean=round(s, 3), best=j == i))
        return grid[i]
    for m in ('fbp', 'tikhonov', 'tv'):
        if (m, '') in done: best[m] = json.loads(done[(m, '')]['weight']); continue
        best[m] = record(m, '', GRIDS[m], [float(psnr(classical(m, y, op, w), x).mean()) for w in GRIDS[m]])
    if nets:
        stored = [(json.loads(r['weight']), r['psnr_mean']) for r in tuning if r['problem'] == key and r['method'] == 'desyre']
        if ('desyre', DESYRE_NET) in done and not desyre_at_edge(json.loads(done[('desyre', DESYRE_NET)]['weight']), [w for w, _ in stored]):
            best[('desyre', DESYRE_NET)] = json.loads(done[('desyre', DESYRE_NET)]['weight'])
        else: best[('desyre', DESYRE_NET)] = tune_desyre(key, x, y, op, nets[DESYRE_NET], best['tv'], record,
                                                         stored if ('desyre', DESYRE_NET) in done else None)
    for g, G in gens.items():
        methods = prior_methods(g)[1:]
        if all((m, g) in done for m in methods):
            for m in methods: best[(m, g)] = json.loads(done[(m, g)]['weight'])
            continue
        warm = csgm(y, op, G, init=starts(G, y, op, restarts_of(G)), restarts=restarts_of(G), **CSGM)
        K = len(GRIDS['sparse_deviation']); yy = y.repeat(K, 1, 1, 1)
        init = warm.z.repeat(K, 1)
        r = sparse_deviation(yy, op, G, weight=torch.tensor(GRIDS['sparse_deviation']).repeat_interleave(N_VAL), lr=CSGM['lr'],
                             restarts=1, warmup_steps=1, steps=JOINT_STEPS, init=init)
        p = psnr(r.x, x.repeat(K, 1, 1, 1)).view(K, N_VAL).mean(1).tolist()
        best[('sparse_deviation', g)] = record('sparse_deviation', g, GRIDS['sparse_deviation'], p)
        if 'soft_constraint' not in methods: continue
        bs = GRIDS['soft_b']; K = len(bs); yy, init = y.repeat(K, 1, 1, 1), warm.z.repeat(K, 1)
        for m, factors in (('soft_constraint', (0.,)), ('soft_constraint_tv', GRIDS['soft_tv_factor'])):
            grid, scores = [], []
            for f in factors:
                tv = f * 2 * best['tv']   # the soft constraint's objective is twice tv_reconstruct's
                r = soft_constraint(yy, op, G, b=torch.tensor(bs).repeat_interleave(N_VAL), tv=tv, restarts=1, warmup_steps=1,
                                    steps=JOINT_STEPS, init=init)
                scores += psnr(r.x, x.repeat(K, 1, 1, 1)).view(K, N_VAL).mean(1).tolist(); grid += [[b, tv] for b in bs]
            best[(m, g)] = record(m, g, grid, scores)
    return best

def desyre_start(name, y, op, tv_weight):
    "DESYRE's x0: the filtered back-projection (Hann, the paper's start) or TV at its tuned weight."
    return op.fbp(y, 'hann').clamp(0, 1) if name == 'fbp' else tv_reconstruct(y, op, tv_weight)

def desyre_at_edge(w, grid):
    "Whether (start, alpha) `w` has the largest alpha `grid` tried for its start (the best may lie beyond it)."
    return w[1] >= max(a for s, a in grid if s == w[0]) * (1 - 1e-9)

def tune_desyre(key, x, y, op, net, tv_weight, record, stored=None):
    """Best (start, alpha) of DESYRE on the validation phantoms: both starts and every alpha as one batch; while the best
    alpha is the largest tried for its start, three more half-decades above it (up to 12), as tune_classical.py does."""
    x0, n = {}, len(x)
    def scores(grid):
        for s in {s for s, _ in grid} - set(x0): x0[s] = desyre_start(s, y, op, tv_weight)   # the TV start only when needed
        r = desyre(y.repeat(len(grid), 1, 1, 1), op, net, alpha=torch.tensor([a for _, a in grid]).repeat_interleave(n),
                   steps=DESYRE_STEPS, init=torch.cat([x0[s] for s, _ in grid]))
        return psnr(r.x, x.repeat(len(grid), 1, 1, 1)).view(len(grid), n).mean(1).tolist()
    if stored: grid, sc = [w for w, _ in stored], [v for _, v in stored]
    else: grid = [[s, a] for s in ('fbp', 'tv') for a in DESYRE_ALPHAS]; sc = scores(grid)
    added = 0
    while added < 12:
        w = grid[max(range(len(grid)), key=lambda j: sc[j])]
        if not desyre_at_edge(w, grid): break
        more = [[w[0], w[1] * 10**(k/2)] for k in (1, 2, 3)]
        print(f"{key} desyre: best {w} at the edge, trying {[a for _, a in more]}", flush=True)
        grid += more; sc += scores(more); added += 3
    return record('desyre', DESYRE_NET, grid, sc)

def cell_rows(cell, x, xr, sec, frac):
    xr = xr.detach().clamp(0, 1)
    p, s = psnr(xr, x).tolist(), ssim(xr, x).tolist(); e = ((xr - x)**2).flatten(1).mean(1).tolist()
    base = dict(key=cell.key, experiment=cell.experiment, dataset=cell.dataset, operator=cell.operator, level=cell.level,
                noise=frac, generator=cell.generator, method=cell.method, seconds=round(sec, 2), device='cpu')
    return [dict(base, image=i, psnr=p[i], ssim=s[i], mse=e[i]) for i in range(len(x))]

def report():
    rows = aggregate(OUT)
    paired = paired_comparison(OUT, rows)
    for e in dict.fromkeys(r['experiment'] for r in rows):
        print(f"\n{e} ({rows[0]['n']} images):"); print(format_table(table_rows([r for r in rows if r['experiment'] == e])))
        pr = [r for r in paired if r['experiment'] == e]
        if pr: print(paired_table(pr))
    return rows, paired

def load_tuning():
    "tuning.csv's rows as tune() writes and keys on them: weights as JSON text, '' for no generator, one row per grid point."
    rows = read_csv(OUT/'tuning.csv') if (OUT/'tuning.csv').exists() else []
    for r in rows:   # read_csv parses numbers and empty cells
        r['best'] = r['best'] in (True, 'True', 1)
        r['generator'] = r['generator'] or ''
        if not isinstance(r['weight'], str): r['weight'] = json.dumps(r['weight'])
    return list({(r['problem'], r['method'], r['generator'], r['weight']): r for r in rows}.values())

def save_tuning(rows):
    "Merge `rows` into tuning.csv as it is on disk now (two runs on different problems or methods may share it); the merged rows."
    merged = list({(r['problem'], r['method'], r['generator'], r['weight']): r for r in load_tuning() + rows}.values())
    write_csv(OUT/'tuning.csv', merged, ('problem', 'method', 'generator', 'weight', 'psnr_mean', 'best'))
    return merged

def main(classical_only=False, problems=None, desyre_only=False):
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    (OUT/'cells').mkdir(parents=True, exist_ok=True)
    x = eval_images(N_IMAGES, dataset='ellipses', image_size=SIZE)[0]
    gens = {} if classical_only else {g: load_pretrained(g) for g in GENERATORS if g in list_pretrained()}
    nets = {} if classical_only or DESYRE_NET not in list_desyre() else {DESYRE_NET: load_desyre(DESYRE_NET)}
    tuning = load_tuning()
    for name, level in PROBLEMS:      # problem-major: both noise levels of 10 angles first
        if problems and f"{name}-{level:g}" not in problems: continue
        for frac in NOISES:
            exp = f"ct64-noise{round(frac*100)}"
            cells = [Cell(exp, 'ellipses', name, level, '', m) for m in ('fbp', 'tikhonov', 'tv')]
            cells += [Cell(exp, 'ellipses', name, level, g, m) for g in gens for m in prior_methods(g)]
            cells += [Cell(exp, 'ellipses', name, level, n, 'desyre') for n in nets]
            if desyre_only: cells = [c for c in cells if c.method == 'desyre']
            if all((OUT/'cells'/f'{c.key}.csv').exists() for c in cells): continue
            t0 = time.time()
            best = tune(name, level, frac, tuning, {} if desyre_only else gens, nets)
            tuning[:] = save_tuning(tuning)
            print(f"{exp} {name} {level}: tuned in {time.time() - t0:.0f} s: {best}", flush=True)
            op = operator(name, level); y = measure(op, x, frac, seed=0)
            warm = {}
            for c in cells:
                f = OUT/'cells'/f'{c.key}.csv'
                if f.exists(): continue
                if c.method == 'desyre':   # its own start (tuned: FBP or TV), then FISTA; the start's time included
                    t = time.time(); start, alpha = best[('desyre', c.generator)]
                    xr = desyre(y, op, nets[c.generator], alpha=alpha, steps=DESYRE_STEPS,
                                init=desyre_start(start, y, op, best['tv'])).x
                    sec = time.time() - t
                    write_csv(f, cell_rows(c, x, xr, sec, frac), CELL_COLUMNS)
                    print(f"  {c.key}: {psnr(xr.clamp(0, 1), x).mean():.2f} dB ({sec:.0f} s)", flush=True)
                    continue
                if c.generator and c.generator not in warm:   # the shared CSGM run (timed by the solver itself)
                    G = gens[c.generator]
                    warm[c.generator] = csgm(y, op, G, init=starts(G, y, op, restarts_of(G)), restarts=restarts_of(G), **CSGM)
                t = time.time()
                if not c.generator: xr = classical(c.method, y, op, best[c.method])
                elif c.method == 'csgm': xr = warm[c.generator].x
                else: xr = prior_run(c.method, y, op, gens[c.generator], warm[c.generator], best[(c.method, c.generator)]).x
                sec = time.time() - t + (warm[c.generator].seconds if c.generator else 0)
                write_csv(f, cell_rows(c, x, xr, sec, frac), CELL_COLUMNS)
                print(f"  {c.key}: {psnr(xr.clamp(0, 1), x).mean():.2f} dB ({sec:.0f} s)", flush=True)
            tuning[:] = save_tuning(tuning)   # again: a run beside this one may have rewritten the file meanwhile
    report()

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--report', action='store_true', help='only the tables from the cells done so far')
    ap.add_argument('--classical', action='store_true', help='FBP, Tikhonov and TV only')
    ap.add_argument('--desyre-only', action='store_true', help='only the DESYRE cells (beside a run of the others)')
    ap.add_argument('--problems', default=None, help='comma-separated, e.g. tomo-10,limited_tomo-90 (default: all)')
    a = ap.parse_args()
    if a.report: report()
    else: main(classical_only=a.classical, problems=a.problems and a.problems.split(','), desyre_only=a.desyre_only)
