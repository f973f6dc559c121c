"Tests of genprior_nb.bench: the quality grid end to end (in process and through the CLI), its CSV schema, resumability, and the speed benchmark."
import os, sys, subprocess, math
import torch
from pathlib import Path
import pytest
import fastcore.test as fct

from genprior_nb.core import read_csv, write_csv
from genprior_nb.bench_settings import quality_grid
from genprior_nb.bench_report import QUALITY_COLUMNS
from genprior_nb.bench import run_bench, run_quality, CELL_COLUMNS, RECONSTRUCT_COLUMNS

EXE = Path(sys.executable).parent/'genprior'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}

EXPECTED_QUALITY_COLUMNS = ['experiment', 'dataset', 'operator', 'level', 'noise', 'generator', 'method', 'n', 'psnr_mean',
                            'psnr_ci', 'ssim_mean', 'ssim_ci', 'mse_mean', 'mse_ci', 'seconds', 'device', 'key']

def mtimes(out): return {f.name: f.stat().st_mtime_ns for f in (Path(out)/'cells').glob('*.csv')}

def test_quality_quick_schema_and_resume(tmp_path):
    out = tmp_path/'bench'
    rows = run_bench('quality', out=out, quick=True)
    cells = quality_grid(quick=True)
    fct.test_eq(len(rows), len(cells))
    fct.test_eq(list(QUALITY_COLUMNS), EXPECTED_QUALITY_COLUMNS)
    with open(out/'quality.csv') as f: fct.test_eq(f.readline().strip().split(','), EXPECTED_QUALITY_COLUMNS)
    q = read_csv(out/'quality.csv')
    fct.test_eq(len(q), len(cells)); fct.test_eq({r['n'] for r in q}, {2})
    assert all(r['psnr_mean'] > 5 and 0 <= r['mse_mean'] <= 1 for r in q), q
    fct.test_eq(sorted(f.stem for f in (out/'cells').glob('*.csv')), sorted(c.key for c in cells))
    fct.test_eq(list(read_csv(next((out/'cells').glob('*.csv')))[0]), list(CELL_COLUMNS))
    assert (out/'msweep_fmnist.png').is_file() or (out/'msweep_shapes.png').is_file()
    # resumable: a second run recomputes nothing ...
    before = mtimes(out)
    run_quality(out, quick=True, progress=False, verbose=False)
    fct.test_eq(mtimes(out), before)
    # ... and deleting one cell recomputes that cell only
    victim = sorted(before)[3]; (out/'cells'/victim).unlink()
    run_quality(out, quick=True, progress=False, verbose=False)
    after = mtimes(out)
    fct.test_eq(set(after), set(before))
    fct.test_eq([k for k in after if after[k] != before[k]], [victim])
    assert not list((out/'cells').glob('*.tmp')) and not list((out/'cells').glob('*.lock'))

@pytest.mark.skipif(not EXE.is_file(), reason=f'console script {EXE} not installed')
def test_cli_quality_quick_and_reconstruct(tmp_path):
    r = subprocess.run([str(EXE), '--threads', '1', 'bench', 'quality', '--quick', '--out', str(tmp_path)], capture_output=True,
                       text=True, env=ENV, timeout=120)
    fct.test_eq(r.returncode, 0)
    assert 'cells done' in r.stdout and '| operator | level | method |' in r.stdout, r.stdout
    fct.test_eq(len(read_csv(tmp_path/'quality.csv')), len(quality_grid(quick=True)))
    r = subprocess.run([str(EXE), '--threads', '1', 'bench', 'reconstruct', '--quick', '--generator', 'vae-ellipses-32', '--out', str(tmp_path)],
                       capture_output=True, text=True, env=ENV, timeout=120)
    fct.test_eq(r.returncode, 0)
    assert 'speed ratio' in r.stdout and 'x;' in r.stdout, r.stdout
    rows = read_csv(tmp_path/'reconstruct.csv')
    fct.test_eq({r['generator'] for r in rows}, {'vae-ellipses-32'})   # --generator picks the 64x64 prior
    fct.test_eq(list(rows[0]), list(RECONSTRUCT_COLUMNS))
    for r in rows:   # the speed-up of a row is its throughput over the reference row's, both from the same run
        fct.test_close(r['images_per_s'], r['images'] / r['seconds'], eps=0.01 * r['images_per_s'])
        fct.test_close(r['speedup'], r['images_per_s'] / rows[0]['images_per_s'], eps=1e-9)
    fct.test_eq([r['images'] for r in rows[:2]], [1, 1])   # the batched solver is timed on the reference image too

def test_two_workers_share_a_grid(tmp_path):
    "A cell claimed by a live process is left to it; the other worker runs the rest."
    cells = quality_grid(quick=True); out = tmp_path/'bench'
    (out/'cells').mkdir(parents=True)
    (out/'cells'/f'{cells[0].key}.lock').write_text('1')  # pid 1 is alive: another worker holds this cell
    run_quality(out, quick=True, progress=False, verbose=False)
    fct.test_eq(sorted(f.stem for f in (out/'cells').glob('*.csv')), sorted(c.key for c in cells[1:]))
    (out/'cells'/f'{cells[0].key}.lock').write_text('999999999')  # its worker died: the lock is stale
    fct.test_eq(len(run_quality(out, quick=True, progress=False, verbose=False)), len(cells))

def test_bad_benchmark_name():
    fct.test_fail(lambda: run_bench('speed'), contains="what must be one of")
    r = subprocess.run([str(EXE), 'bench', 'speed'], capture_output=True, text=True, env=ENV, timeout=60)
    fct.test_eq(r.returncode, 2)

def test_targets_grid():
    "The quality-target grid: every target problem once per baseline and per generator method, baselines first."
    from genprior_nb.bench_settings import TARGET_LEVELS, TARGET_GENERATORS, TARGET_SETTINGS, classical_methods
    cells = quality_grid(grid='targets')
    fct.test_eq(len(cells), sum(len(classical_methods('fmnist', o, l)) for o, l in TARGET_LEVELS) + len(TARGET_LEVELS) * len(TARGET_GENERATORS))
    fct.test_eq(len({c.key for c in cells}), len(cells))
    assert {('inpaint', 0.1), ('cs', 50), ('cs', 150), ('cs', 300), ('tomo', 10)} <= set(TARGET_LEVELS)
    first_gen = next(i for i, c in enumerate(cells) if c.generator)
    assert all(not c.generator for c in cells[:first_gen]) and all(c.generator for c in cells[first_gen:])
    assert all(c.experiment == 'targets' and c.dataset == 'fmnist' for c in cells)
    assert {m for _, m in TARGET_GENERATORS if m != 'desyre'} <= set(TARGET_SETTINGS)
    from genprior_nb.desyre import desyre_settings   # DESYRE's settings come from its own tuning table, for every target
    assert all(desyre_settings(o, l)['alpha'] > 0 for o, l in TARGET_LEVELS)
    fct.test_fail(lambda: quality_grid(grid='small'), contains="grid must be one of ['full', 'msweep', 'targets'], got 'small'")
    sweep = quality_grid(grid='msweep')
    fct.test_eq({c.key for c in sweep}, {c.key for c in quality_grid() if c.experiment == 'msweep'})

def test_soft_constraint_tv_cells():
    "Every fmnist problem with a `soft_constraint_tv` cell has tuned weights, and such a cell runs with them."
    from genprior_nb.bench_settings import Cell, soft_tv_weights, SOFT_TV_WEIGHTS, QUICK_SETTINGS
    from genprior_nb.bench import run_cell
    from genprior_nb.vae import VAE
    tv_cells = [c for c in quality_grid() + quality_grid(grid='targets') if c.method == 'soft_constraint_tv']
    assert len(tv_cells) >= 10
    for c in tv_cells:
        b, tv = soft_tv_weights(c.operator, c.level)
        assert 0 < b <= 3.2 and 0 < tv < 1, (c.key, b, tv)
    fct.test_fail(lambda: soft_tv_weights('cs', 77), contains='no tuned soft_constraint_tv weights for cs 77; tuned problems: inpaint 0.25')
    torch.manual_seed(0); G = VAE(8, width=8).eval().requires_grad_(False)
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    rows = run_cell(Cell('operators', 'fmnist', 'inpaint', 0.25, 'tiny', 'soft_constraint_tv'), x, G, QUICK_SETTINGS)
    fct.test_eq(len(rows), 2); assert all(math.isfinite(r['psnr']) for r in rows)
    fct.test_eq(len(SOFT_TV_WEIGHTS), len({(c.operator, c.level) for c in tv_cells}))

def test_paired_comparison(tmp_path):
    "paired.csv: the best prior method against the best classical one per problem, differences per image."
    from genprior_nb.bench_report import paired_comparison, PAIRED_COLUMNS, aggregate
    cells = tmp_path/'cells'; cells.mkdir()
    def cell(key, gen, method, psnr, images=(0, 1, 2)):
        write_csv(cells/f'{key}.csv', [dict(key=key, experiment='operators', dataset='fmnist', operator='cs', level=50.0, noise=0.05,
                   generator=gen, method=method, image=i, psnr=p, ssim=p/40, mse=0.01, seconds=1.0, device='cpu')
                   for i, p in zip(images, psnr)], CELL_COLUMNS)
    cell('a', 'vae-fmnist-8', 'csgm', [20., 22., 18.]); cell('b', 'wgan-fmnist-8', 'csgm', [15., 15., 15.])
    cell('c', '', 'tv', [19., 20., 19.]); cell('d', '', 'l1_dct', [10., 10., 10.])
    pr = paired_comparison(tmp_path, aggregate(tmp_path))
    fct.test_eq(len(pr), 1); fct.test_eq(list(read_csv(tmp_path/'paired.csv')[0]), list(PAIRED_COLUMNS))
    fct.test_eq((pr[0]['prior'], pr[0]['classical']), ('VAE csgm', 'tv'))
    fct.test_close(pr[0]['psnr_diff'], 2/3, eps=1e-12); fct.test_close(pr[0]['prior_better_fraction'], 2/3, eps=1e-12)
    sd = (((1 - 2/3)**2 + (2 - 2/3)**2 + (-1 - 2/3)**2) / 2)**0.5   # differences 1, 2, -1
    fct.test_close(pr[0]['psnr_diff_ci'], 4.3027 * sd / 3**0.5, eps=1e-3)   # t(0.975, 2 dof) = 4.3027
    cell('c', '', 'tv', [19., 20., 19.], images=(0, 1, 3))
    fct.test_fail(lambda: paired_comparison(tmp_path, aggregate(tmp_path)), contains='cells a and c hold different images')

def test_torchrun_ranks_split_the_grid(tmp_path, monkeypatch):
    "Under torchrun ($RANK, $WORLD_SIZE) run_quality takes the cells whose index modulo the world size is the rank."
    cells = quality_grid(quick=True)[:4]
    monkeypatch.setenv('RANK', '1'); monkeypatch.setenv('WORLD_SIZE', '2')
    run_quality(tmp_path, cells=[c for c in cells if not c.generator], progress=False, verbose=False)
    mine = [c for c in cells if not c.generator][1::2]
    fct.test_eq(sorted(f.stem for f in (tmp_path/'cells').glob('*.csv')), sorted(c.key for c in mine))

def test_desyre_cell_runs_at_its_tuned_settings():
    "A DESYRE cell loads the shipped synthesis network through the runner's loader and solves at `desyre_settings`."
    from genprior_nb.bench import run_cell, _load_prior
    from genprior_nb.bench_settings import Cell
    from genprior_nb.data import eval_images
    from genprior_nb.desyre import desyre, desyre_settings, load_desyre
    from genprior_nb.metrics import psnr
    x = eval_images(2)[0]
    net = _load_prior('desyre-fmnist', 'cpu')
    rows = run_cell(Cell('targets', 'fmnist', 'inpaint', 0.25, 'desyre-fmnist', 'desyre'), x, net)
    from genprior_nb.bench_settings import bench_operator
    op, noise = bench_operator('inpaint', 0.25); y = op.measure(x, noise, seed=0)
    direct = psnr(desyre(y, op, load_desyre(), **desyre_settings('inpaint', 0.25)).x.clamp(0, 1), x)
    fct.test_close(torch.tensor([r['psnr'] for r in rows]), direct, eps=1e-4)

def test_counting_calls_closed_form_and_restores():
    "One CSGM-style step on R codes per image counts R of each; a linear solve counts one A and one A^T per CG step; nothing stays hooked."
    from genprior_nb.bench import counting_calls
    from genprior_nb.generators import LinearGenerator
    from genprior_nb.operators import CompressedSensing, GaussianBlur, batched_cg
    G = LinearGenerator(torch.randn(784, 5, generator=torch.Generator().manual_seed(1)))
    op = CompressedSensing(30, seed=1)
    z = torch.randn(4 * 3, 5, requires_grad=True)   # 4 images x 3 restarts
    with counting_calls(op, [G], n_images=4) as c:
        for _ in range(2): op.A(G(z)).pow(2).sum().backward()
    assert c == {'A': 6.0, 'At': 6.0, 'net': 6.0, 'net_backward': 6.0}
    blur = GaussianBlur(5, sigma=1.0)
    rhs = blur.A_adjoint(blur.A(torch.rand(2, 1, 28, 28)))
    with counting_calls(blur, n_images=2) as c:
        batched_cg(lambda v: blur.A_adjoint(blur.A(v)) + 0.1 * v, rhs, n_iter=7, tol=0.0)
    assert c == {'A': 7.0, 'At': 7.0, 'net': 0.0, 'net_backward': 0.0}   # one A^T A per CG step
    assert 'A' not in op.__dict__ and 'A_adjoint' not in blur.__dict__ and not G._forward_hooks
    with pytest.raises(TypeError, match=r"nets\[0\] must be a torch.nn.Module, got str"):
        with counting_calls(op, ['G']): pass
    assert 'A' not in op.__dict__

def test_bench_calls_quick_and_reach(tmp_path):
    from genprior_nb.bench import bench_calls, calls_to_reach, CALLS_COLUMNS, BENCHMARKS
    from genprior_nb.cli import build_parser
    rows = bench_calls(tmp_path, quick=True, progress=False, verbose=False, problems=(('inpaint', 0.25),), methods=('csgm', 'tv'))
    assert [(r['method'], r['budget']) for r in rows] == [('csgm', 25), ('csgm', 50), ('tv', 50), ('tv', 100)]
    assert list(read_csv(tmp_path/'calls.csv')[0]) == list(CALLS_COLUMNS) and (tmp_path/'calls.png').stat().st_size > 1000
    tv = [r for r in rows if r['method'] == 'tv']
    assert [(r['A'], r['At'], r['net']) for r in tv] == [(50.0, 50.0, 0.0), (100.0, 100.0, 0.0)]
    cs = [r for r in rows if r['method'] == 'csgm']
    assert cs[1]['net'] > cs[0]['net'] >= cs[0]['net_backward'] > 0 and cs[0]['A'] >= cs[0]['At'] > 0
    fake = [dict(operator='cs', level=50, method='m', budget=b, psnr_mean=p, A=b, At=b, net=0, net_backward=0, seconds=1.0)
            for b, p in ((1, 10.0), (2, 19.8), (4, 20.0), (8, 19.9))]
    r, = calls_to_reach(fake)
    assert (r['best_psnr'], r['budget'], r['operator_calls']) == (20.0, 2, 4)
    for what in BENCHMARKS: assert build_parser().parse_args(['bench', what]).what == what   # the CLI offers every benchmark
    with pytest.raises(ValueError, match=r"methods entries must be one of .*got 'lasso'"):
        bench_calls(None, quick=True, methods=('lasso',), verbose=False)

def test_reconstruct_benchmark_at_64x64(tmp_path):
    "The speed benchmark takes the generator's image size: a 64x64 ellipse generator gets a 64x64 operator and its own images."
    from genprior_nb.bench import bench_reconstruct
    rows = bench_reconstruct(tmp_path, quick=True, generator='vae-ellipses-32', verbose=False)
    assert {r['generator'] for r in rows} == {'vae-ellipses-32'} and len(rows) >= 2
    assert all(r['psnr_mean'] > 5 and r['images_per_s'] > 0 for r in rows)
    assert read_csv(tmp_path/'reconstruct.csv')[0]['generator'] == 'vae-ellipses-32'

class LinearGenerator(torch.nn.Module):
    "G(z) = W z + b reshaped to (1, 4, 4): its pass has closed-form FLOPs."
    def __init__(self, k=3):
        super().__init__(); self.latent_dim = k; self.fc = torch.nn.Linear(k, 16)
    def forward(self, z): return self.fc(z).view(-1, 1, 4, 4)

def test_pass_flops_and_profile_closed_form():
    from genprior_nb.bench import pass_flops, pass_profile, profile_table, PROFILE_COLUMNS
    from genprior_nb.operators import CompressedSensing
    G = LinearGenerator(3).train()          # trainable and in train mode: both count as a frozen pass and are restored
    op = CompressedSensing(5, in_shape=(1, 4, 4))
    # forward W z (2*3*16), backward to z only (2*3*16), then A x and A^T r (2*5*16 each); no weight gradient
    fct.test_eq(pass_flops(G, op), 2*3*16 * 2 + 2*5*16 * 2)
    prof = pass_profile(G, n_codes=8, repeat=1, peak=10.0)
    fct.test_eq(prof['pass_mflop'] * 1e6, 8 * 2*3*16 * 2)
    fct.test_eq([r['layer'] for r in prof['rows']], ['fc', 'other'])
    fct.test_eq(set(prof['rows'][0]), set(PROFILE_COLUMNS))
    fct.test_eq(prof['rows'][0]['mflop'] * 1e6, 8 * 2*3*16 * 2)
    fct.test_close(prof['rows'][-1]['mflop'], 0, eps=1e-12)
    assert G.training and all(p.requires_grad and p.grad is None for p in G.parameters())
    fct.test_close(prof['pass_fraction'], prof['pass_gflops'] / 10.0, eps=1e-9)
    # the bound is the pass's FLOPs over the layers' summed time (no timing is asserted: timings are noise in tests)
    fct.test_close(prof['bound_fraction'] * prof['layers_ms'], prof['pass_fraction'] * prof['pass_ms'], eps=1e-9)
    fct.test_close(prof['layers_ms'], prof['rows'][0]['ms'], eps=1e-9)
    t = profile_table(prof).splitlines()
    fct.test_eq(len(t), 4); assert t[1].startswith('fc') and t[-1].startswith('pass: 8 codes')
    pc = pass_profile(G, n_codes=8, repeat=1, peak=10.0, compile=True)   # the pass through torch.compile: same FLOPs counted
    fct.test_eq((pc['compiled'], prof['compiled']), (True, False)); fct.test_eq(pc['pass_mflop'], prof['pass_mflop'])
    assert G.training and all(p.requires_grad and p.grad is None for p in G.parameters())

def test_pass_profile_bad_input():
    from genprior_nb.bench import pass_profile
    with pytest.raises(ValueError, match=r"n_codes must be an integer in \[1, inf\], got 0"): pass_profile(LinearGenerator(), n_codes=0)
    with pytest.raises(TypeError, match="repeat must be an integer, got float 2.5"): pass_profile(LinearGenerator(), repeat=2.5)
    with pytest.raises(TypeError, match="compile must be True or False, got str 'yes'"): pass_profile(LinearGenerator(), compile='yes')
