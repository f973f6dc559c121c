"Tests of genprior_nb.latent_opt: closed-form recovery, in-range recovery, restart selection, every method x operator, input checks, determinism."
import math
import pytest
import torch
from conftest import tiny_generator
from torch import nn
import fastcore.test as fct

from genprior_nb.operators import Identity, CompressedSensing, RandomInpainting, OPERATORS, make_operator
from genprior_nb.vae import AE, VAE
from genprior_nb.core import cosine_lr
from genprior_nb.generators import LinearGenerator
from genprior_nb.baselines import soft_threshold
from genprior_nb.latent_opt import (METHODS, ReconResult, initial_latents, csgm, sparse_deviation, soft_constraint, pgd_gan,
                                    reconstruct)

K = 5

def _psnr(a, b): return (-10*torch.log10(((a - b)**2).flatten(1).mean(1))).tolist()

@pytest.fixture(scope='module')
def linear_problem():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(784, K, generator=g) * 0.05
    return LinearGenerator(W), torch.randn(3, K, generator=g), g

def _ridge(W, A, y, lam):
    "z* = (W^T A^T A W + lam I)^-1 W^T A^T y in float64, one row per measurement."
    AW = A @ W.double()
    lam = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    return torch.stack([torch.linalg.solve(AW.T @ AW + l*torch.eye(AW.shape[1], dtype=torch.float64), AW.T @ yi)
                        for l, yi in zip(lam.expand(len(y)), y.double().flatten(1))])

# ---------------------------------------------------------------- closed form

@pytest.mark.parametrize('opname', ['identity', 'cs'])
@pytest.mark.parametrize('optimizer', ['adam', 'lbfgs'])
def test_linear_generator_matches_ridge_solution(linear_problem, opname, optimizer):
    G, z0, g = linear_problem
    op = Identity() if opname == 'identity' else CompressedSensing(50, seed=1)
    A = torch.eye(784, dtype=torch.float64) if opname == 'identity' else op.matrix.double()
    y = op(G(z0)) + 0.05*torch.randn((3,) + op.out_shape, generator=torch.Generator().manual_seed(5))
    lam = 0.1
    zs = _ridge(G.W, A, y, lam)
    r = csgm(y, op, G, restarts=2, steps=400, lr=0.1, lam=lam, optimizer=optimizer, prune=1.0)  # every restart to the end
    err = (r.z.double() - zs).abs().max().item()
    assert err < 1e-4 * max(1., zs.abs().max().item()), err
    assert torch.allclose(r.x, G(r.z)), "x is G(z) for csgm"
    fct.test_eq(r.x.shape, (3, 1, 28, 28))
    # a convex problem: both restarts reach the same point
    assert (r.all_z[:, 0].double() - r.all_z[:, 1].double()).abs().max() < 1e-3

def test_per_image_lambda(linear_problem):
    G, z0, _ = linear_problem
    op = CompressedSensing(40, seed=2)
    y = op(G(z0))
    lam = torch.tensor([0.0, 1.0, 10.0])
    zs = _ridge(G.W, op.matrix.double(), y, lam)
    r = csgm(y, op, G, restarts=1, steps=400, lr=0.1, lam=lam)
    assert (r.z.double() - zs).abs().max() < 1e-4, (r.z, zs)
    assert (r.z[0] - z0[0]).abs().max() < 1e-3, "lam = 0 and no noise: exact recovery of z0"
    assert r.z[2].norm() < r.z[1].norm() < r.z[0].norm() * 1.01, "larger lam shrinks z"

# ---------------------------------------------------------------- in-range recovery with a small VAE

@pytest.fixture(scope='module')
def small_vae():
    torch.manual_seed(0)
    G = VAE(4, 8)
    with torch.no_grad(): G.decoder.net[-1].weight.mul_(40); G.decoder.fc.weight.mul_(3)   # varied, non-flat images
    return G.eval().requires_grad_(False)

def test_in_range_recovery_from_few_cs_measurements(small_vae):
    G = small_vae
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(2, 4, generator=g)
    with torch.no_grad(): x, x_other = G(z0), G(torch.randn(2, 4, generator=g))
    assert max(_psnr(x_other, x)) < 20, "control: a random code is far from x"
    op = CompressedSensing(25, seed=2)   # 25 measurements of a 784-pixel image
    r = csgm(op(x), op, G, restarts=4, steps=200, lr=0.1, seed=0)
    assert min(_psnr(r.x, x)) > 40, _psnr(r.x, x)
    assert (r.misfit.min(1).values < 1e-3).all(), r.misfit  # near zero: the kept restart found the true code

def test_best_restart_selection(small_vae):
    G = small_vae
    op = CompressedSensing(25, seed=2)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad(): y = op(G(torch.randn(3, 4, generator=g))) + 0.05*torch.randn(3, 25, generator=g)
    for r in (csgm(y, op, G, restarts=5, steps=15, lr=0.1, seed=1, prune=1.0), pgd_gan(y, op, G, restarts=5, outer=2, inner=5, seed=1)):
        fct.test_eq(r.misfit.shape, (3, 5)); fct.test_eq(r.all_z.shape, (3, 5, 4))
        assert torch.equal(r.best, r.misfit.argmin(1))
        assert len(set(r.misfit[0].tolist())) > 1, "control: restarts end at different misfits"
        b = torch.arange(3)
        assert torch.equal(r.z, r.all_z[b, r.best])
        with torch.no_grad():
            assert torch.allclose(r.x, G(r.all_z[b, r.best]), atol=1e-6)
            own = ((op(G(r.all_z.flatten(0, 1))) - y.repeat_interleave(5, 0))**2).sum(1).view(3, 5)
        assert torch.allclose(own, r.misfit, rtol=1e-4, atol=1e-6), "misfit is ||A G(z_r) - y||^2 of each restart"

def test_pruned_restarts_follow_the_unpruned_run(small_vae):
    "Pruning: the kept restart is the best by objective at the pruning step, and its path equals the unpruned run's."
    G = small_vae
    op = CompressedSensing(25, seed=2)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad(): y = op(G(torch.randn(3, 4, generator=g))) + 0.05*torch.randn(3, 25, generator=g)
    full = csgm(y, op, G, restarts=4, steps=40, lr=0.1, seed=1, log_every=1)
    pr = csgm(y, op, G, restarts=4, steps=40, lr=0.1, seed=1, log_every=1, prune=0.25)
    kept = full.history[9].argmin(1)  # objective logged at step 9 = the one pruning compares
    assert torch.equal(pr.best, kept)
    b = torch.arange(3)
    # Adam acts per coordinate, so the kept restart's path matches the full run (up to batched-matmul rounding)
    fct.test_close(pr.z, full.all_z[b, kept], eps=1e-4)
    fct.test_close(pr.history[:, b, kept], full.history[:, b, kept], eps=1e-3)
    others = torch.ones(3, 4, dtype=torch.bool); others[b, kept] = False
    assert (pr.history[10:-1][:, others] == pr.history[9][others]).all(), "pruned restarts are frozen"
    fct.test_eq(pr.misfit.shape, (3, 4))
    with pytest.raises(ValueError, match=r'prune must be a finite number in \(0, 1\]'): csgm(y, op, G, steps=2, prune=1.5)

@pytest.mark.parametrize('prune', [1.0, 0.3])
def test_chunked_passes_match_one_pass(small_vae, prune):
    "Solving the images in several passes (chunk) gives the same result as one pass: the problems are independent."
    G = small_vae
    op = CompressedSensing(25, seed=2)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad(): y = op(G(torch.randn(5, 4, generator=g))) + 0.05*torch.randn(5, 25, generator=g)
    one = csgm(y, op, G, restarts=3, steps=30, lr=0.1, seed=1, prune=prune)
    many = csgm(y, op, G, restarts=3, steps=30, lr=0.1, seed=1, prune=prune, chunk=6)  # 2 images per pass: 3 passes
    assert torch.equal(one.best, many.best)
    fct.test_close(one.all_z, many.all_z, eps=1e-4); fct.test_close(one.history, many.history, eps=1e-3)
    fct.test_eq(many.history.shape, one.history.shape)
    with pytest.raises(ValueError, match='chunk must be an integer'): csgm(y, op, G, steps=2, chunk=0)

def test_early_stopping_and_history(linear_problem):
    G, z0, _ = linear_problem
    op = Identity(); y = op(G(z0))
    r = csgm(y, op, G, restarts=2, steps=3000, lr=0.1, lam=0.1, tol=1e-6, log_every=10)
    assert r.steps_run < 3000 and r.steps_run % 25 == 0, r.steps_run
    fct.test_eq(r.history.shape, (math.ceil(r.steps_run/10) + 1, 3, 2))
    assert (r.history[-1] <= r.history[0]).all()
    assert 'csgm' in repr(r) and isinstance(r, ReconResult)

# ---------------------------------------------------------------- every method on every operator

@pytest.fixture(scope='module')
def tiny_ae():
    "Latent dimension 4 here (the shared fixture has 8): the initial-latent checks below use it."
    return tiny_generator('ae', 4, 8)

@pytest.fixture(scope='module')
def operators():
    return {name: make_operator(name) for name in OPERATORS}

FAST = {'csgm': dict(restarts=2, steps=4), 'sparse_deviation': dict(restarts=2, warmup_steps=3, steps=3),
        'soft_constraint': dict(restarts=2, warmup_steps=3, steps=3, cg_iters=2), 'pgd_gan': dict(restarts=2, outer=2, inner=3)}

def test_registry_covered():
    fct.test_eq(set(FAST), set(METHODS))
    assert len(OPERATORS) >= 6

@pytest.mark.parametrize('opname', OPERATORS)
def test_every_method_on_every_operator(opname, operators, tiny_ae):
    op, G = operators[opname], tiny_ae
    x = torch.rand(2, *op.in_shape, generator=torch.Generator().manual_seed(0))
    y = op(x)
    for method in METHODS:
        r = reconstruct(y, op, G, method=method, seed=0, **FAST[method])
        R = 2 if method in ('csgm', 'pgd_gan') else 1
        fct.test_eq(r.method, method)
        fct.test_eq(r.x.shape, (2, *op.in_shape)); fct.test_eq(r.z.shape, (2, 4))
        fct.test_eq(r.misfit.shape, (2, R)); fct.test_eq(r.all_z.shape, (2, R, 4)); fct.test_eq(r.best.shape, (2,))
        fct.test_eq(r.history.shape[1:], (2, R))
        for t in (r.x, r.z, r.misfit, r.all_z, r.history): assert torch.isfinite(t).all(), (opname, method)
        assert float(r.x.min()) >= 0 and float(r.x.max()) <= 1, (opname, method)
        assert r.steps_run > 0 and r.seconds >= 0
        with torch.no_grad():
            fct.test_close(r.misfit[torch.arange(2), r.best], ((op(r.x) - y)**2).flatten(1).sum(1), eps=1e-3)

# ---------------------------------------------------------------- other methods: behaviour

def test_sparse_deviation_fits_off_range_spikes():
    g = torch.Generator().manual_seed(4)
    W = 0.02*torch.randn(784, 4, generator=g); W[:, 0] = 0.5   # a constant grey level plus small patterns
    G = LinearGenerator(W)
    z0 = torch.cat([torch.ones(2, 1), torch.randn(2, 3, generator=g)], 1)
    x_true = G(z0).clone(); x_true.view(2, -1)[:, [10, 200, 400, 600]] = 1.0   # four pixels off the range of G
    assert 0 < float(x_true.min()) and float(x_true.max()) <= 1
    op = Identity()
    r_in = csgm(x_true, op, G, restarts=1, steps=200, lr=0.1)
    r_sd = sparse_deviation(x_true, op, G, weight=0.05, restarts=1, warmup_steps=200, steps=200, lr=0.1)
    e_in = ((r_in.x - x_true)**2).flatten(1).sum(1); e_sd = ((r_sd.x - x_true)**2).flatten(1).sum(1)
    assert (e_sd < 0.1*e_in).all(), (e_sd, e_in)
    u = r_sd.extra['u'].flatten(1)
    fct.test_eq(u.shape, (2, 784))
    fct.test_eq(u.abs().topk(4, 1).indices.sort(1).values.tolist(), [[10, 200, 400, 600]]*2)
    assert ((u.abs() > 1e-6).sum(1) < 50).all(), "the deviation is sparse"
    assert (r_sd.misfit < r_in.misfit).all()

def _square_problem():
    "A linear generator (grey level plus small patterns) and two of its images with a flat bright square added: off the range."
    W = 0.05*torch.randn(784, 4, generator=torch.Generator().manual_seed(2)); W[:, 0] = 0.4
    G = LinearGenerator(W)
    z0 = torch.cat([torch.ones(2, 1), torch.randn(2, 3, generator=torch.Generator().manual_seed(3))], 1)
    x = G(z0).clamp(0, 1); x[:, :, 8:16, 8:16] = 1.0
    op = CompressedSensing(300, seed=2)
    return G, x, op, op.measure(x, 0.02, seed=0)

def test_soft_constraint_tv_with_b0_is_tv_reconstruct():
    from genprior_nb.baselines import tv_reconstruct
    G, x, op, y = _square_problem()
    r = soft_constraint(y, op, G, b=0.0, tv=0.02, restarts=1, warmup_steps=20, steps=30, pd_iters=4)
    xt = tv_reconstruct(y, op, 0.01, n_iter=31*4, tol=0, x0=r.extra['warmup'].x, step_ratio=1.)   # tv/2, (steps + 1) x pd_iters steps, the soft constraint's steps
    fct.test_close(r.x, xt, eps=1e-5)

def test_soft_constraint_tv_follows_piecewise_constant_deviation():
    G, x, op, y = _square_problem()
    plain = soft_constraint(y, op, G, b=0.1, restarts=1, warmup_steps=100, steps=200)
    with_tv = soft_constraint(y, op, G, b=0.1, tv=0.02, restarts=1, warmup_steps=100, steps=200)
    gain = [a - b for a, b in zip(_psnr(with_tv.x, x), _psnr(plain.x, x))]
    assert min(gain) > 1, gain
    assert float(with_tv.x.min()) >= 0 and float(with_tv.x.max()) <= 1
    fct.test_eq(soft_constraint(y, op, G, b=0.1, tv=0.0, restarts=1, warmup_steps=5, steps=5).x,
                soft_constraint(y, op, G, b=0.1, restarts=1, warmup_steps=5, steps=5).x)   # tv = 0 is the plain method

def test_soft_threshold():
    v = torch.tensor([-3., -1., -0.5, 0., 0.5, 1., 3.])
    fct.test_eq(soft_threshold(v, 1.).tolist(), [-2., 0., 0., 0., 0., 0., 2.])
    fct.test_eq(soft_threshold(v, 0.).tolist(), v.tolist())

def test_cosine_lr():
    fct.test_close(cosine_lr(0.1, 0, 100), 0.1)
    fct.test_close(cosine_lr(0.1, 100, 100), 0.005)
    fct.test_close(cosine_lr(0.1, 50, 100), 0.1*(0.05 + 0.95*0.5))

def test_initial_latents(tiny_ae):
    G = tiny_ae
    a = initial_latents(G, 3, 4, seed=0); fct.test_eq(a.shape, (3, 4, 4))
    assert torch.equal(a, initial_latents(G, 3, 4, seed=0)) and not torch.equal(a, initial_latents(G, 3, 4, seed=1))
    z = torch.randn(3, 4)
    assert torch.equal(initial_latents(G, 3, 2, init=z), z[:, None].expand(3, 2, 4))
    op = RandomInpainting(0.5, seed=0)
    x = torch.rand(3, 1, 28, 28); y = op(x)
    e = initial_latents(G, 3, 2, seed=0, init='encoder', y=y, op=op)
    with torch.no_grad(): assert torch.equal(e[:, 0], G.encode(op.A_adjoint(y).clamp(0, 1)))
    assert torch.equal(e[:, 1], initial_latents(G, 3, 2, seed=0)[:, 1])
    with pytest.raises(ValueError, match=r'init must have shape \(B, R, k\) = \(3, 2, 4\)'): initial_latents(G, 3, 2, init=torch.zeros(3, 2, 5))
    with pytest.raises(ValueError, match='init must be one of'): initial_latents(G, 3, 2, init='zeros')

def test_initial_latents_bad_2d_init(tiny_ae):
    "BUG (reported): a (B, k') init with the wrong k raises torch's RuntimeError from expand, not the clear ValueError."
    with pytest.raises(ValueError, match=r'init must have shape \(B, R, k\) = \(3, 2, 4\) or \(B, k\)'):
        initial_latents(tiny_ae, 3, 2, init=torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r'init must have shape'):
        initial_latents(tiny_ae, 3, 2, init=torch.zeros(2, 4))   # wrong B

# ---------------------------------------------------------------- input checks

@pytest.fixture(scope='module')
def cs_problem(tiny_ae):
    op = CompressedSensing(30, seed=0)
    return op, tiny_ae, op(torch.rand(2, 1, 28, 28))

@pytest.mark.parametrize('method', METHODS)
def test_bad_inputs(method, cs_problem):
    op, G, y = cs_problem
    run = lambda y=y, op=op, G=G, **kw: reconstruct(y, op, G, method=method, **{**FAST[method], **kw})
    with pytest.raises(ValueError) as e: run(y[:, :29])
    fct.test_eq(str(e.value), "y must have shape (B, 30) for CompressedSensing(m=30, seed=0, in_shape=(1, 28, 28)), got (2, 29)")
    with pytest.raises(ValueError, match=r'y must have shape'): run(y[0])
    with pytest.raises(ValueError, match=r'restarts must be an integer in \[1, inf\], got 0'): run(restarts=0)
    bad = y.clone(); bad[1, 3] = float('nan')
    with pytest.raises(ValueError, match='y contains NaN or inf values'): run(bad)
    bad[1, 3] = float('inf')
    with pytest.raises(ValueError, match='y contains NaN or inf values'): run(bad)
    with pytest.raises(ValueError, match='empty batch'): run(y[:0])
    with pytest.raises(TypeError, match='floating-point'): run(y.long())
    with pytest.raises(TypeError, match='op must be a genprior_nb LinearOperator'): run(op=lambda x: x)
    with pytest.raises(TypeError, match=r'G \(Linear\) has no latent_dim attribute'): run(G=nn.Linear(4, 784))
    with pytest.raises(ValueError, match=r'makes images of shape \(1, 28, 28\) but op expects \(1, 12, 12\)'):
        small = CompressedSensing(30, seed=0, in_shape=(1, 12, 12)); run(small(torch.rand(2, 1, 12, 12)), small)

@pytest.mark.parametrize('method', METHODS)
def test_generator_on_other_device(method, cs_problem):
    op, _, y = cs_problem
    G_meta = AE(4, 8).to('meta')
    with pytest.raises(ValueError) as e: reconstruct(y, op, G_meta, method=method, **FAST[method])
    fct.test_eq(str(e.value), "G is on device meta but y is on cpu; move both to the same device")

def test_unknown_method_and_bad_settings(cs_problem):
    op, G, y = cs_problem
    with pytest.raises(ValueError, match=r"method must be one of \[.*'csgm'.*\], got 'adam'"): reconstruct(y, op, G, method='adam')
    with pytest.raises(TypeError): reconstruct(y, op, G, method='csgm', no_such_setting=1)
    with pytest.raises(ValueError, match='lam must be a finite number'): csgm(y, op, G, steps=2, lam=-1.)
    with pytest.raises(ValueError, match=r'lam must be a number or a tensor of shape \(B,\) = \(2,\)'): csgm(y, op, G, steps=2, lam=torch.ones(3))
    with pytest.raises(ValueError, match='lam must be finite and >= 0'): csgm(y, op, G, steps=2, lam=torch.tensor([0.1, -1.]))
    with pytest.raises(ValueError, match='optimizer must be one of'): csgm(y, op, G, steps=2, optimizer='sgd')
    with pytest.raises(ValueError, match='steps must be an integer'): csgm(y, op, G, steps=0)
    with pytest.raises(ValueError, match='lr must be a finite number'): csgm(y, op, G, steps=2, lr=0.)
    with pytest.raises(ValueError, match='basis must be one of'): sparse_deviation(y, op, G, basis='fourier', warmup_steps=1, steps=1, restarts=1)
    with pytest.raises(ValueError, match='eta must be a finite number'): pgd_gan(y, op, G, eta=0., outer=1, inner=1)
    with pytest.raises(ValueError, match="init='encoder' needs a generator with an encoder"):
        csgm(y, op, LinearGenerator(torch.randn(784, 4)), steps=2, init='encoder')

# ---------------------------------------------------------------- determinism

@pytest.mark.parametrize('method', METHODS)
def test_same_seed_same_result(method, cs_problem):
    op, G, y = cs_problem
    a = reconstruct(y, op, G, method=method, seed=3, **FAST[method])
    b = reconstruct(y, op, G, method=method, seed=3, **FAST[method])
    assert torch.equal(a.x, b.x) and torch.equal(a.z, b.z) and torch.equal(a.misfit, b.misfit)
    c = reconstruct(y, op, G, method=method, seed=4, **FAST[method])
    assert not torch.equal(a.all_z, c.all_z), "the seed changes the restarts"

# ---------------------------------------------------------------- PGD-GAN (warm-started projections)

def test_pgd_gan_one_exact_round_is_the_projection_of_the_gradient_step():
    "Linear G, A = I, eta = 1: one round with an exact projection (many Adam steps) returns W (W^T W)^-1 W^T y."
    W = torch.randn(49, 4, generator=torch.Generator().manual_seed(0)) / 7
    G = LinearGenerator(W, (1, 7, 7)); y = torch.randn(3, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    r = pgd_gan(y, Identity((1, 7, 7)), G, restarts=1, outer=1, inner=3000, eta=1.0)
    proj = (W @ torch.linalg.solve(W.T @ W, W.T @ y.flatten(1).T)).T.view(3, 1, 7, 7)
    fct.test_close(r.x, proj, eps=1e-4)
    fct.test_eq(r.extra['passes_per_image'], 3000)

def test_pgd_gan_defaults_match_csgm_in_range():
    "On in-range images with 25% inpainting, pgd_gan's defaults come within 0.5 dB of csgm, at the same generator passes."
    from genprior_nb.metrics import psnr
    G = tiny_generator('vae', 4, 8, seed=3)
    x = G(torch.randn(4, 4, generator=torch.Generator().manual_seed(2)))
    op = RandomInpainting(0.25, seed=0); y = op.measure(x, 0.01, seed=0)
    pc, pp = psnr(csgm(y, op, G).x, x).mean().item(), psnr((r := pgd_gan(y, op, G)).x, x).mean().item()
    assert pp > pc - 0.5, (pc, pp)
    fct.test_eq(r.extra['passes_per_image'], 540)   # 5 restarts x 12 rounds x 5 steps + 48 x 5: csgm's 5 x 60 + 240
