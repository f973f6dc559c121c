"""Property-based tests (hypothesis): every forward operator is linear and has an exact adjoint for random image sizes,
seeds, parameters and batch sizes; the latent solvers return finite images of the right shape whose data misfit is never
worse than that of their starting codes, and the same seed gives bitwise the same reconstruction."""
import math
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

from genprior_nb import operators as O
from genprior_nb.vae import VAE
from genprior_nb.generators import LinearGenerator
from genprior_nb.latent_opt import csgm, sparse_deviation, pgd_gan, soft_constraint, initial_latents

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = ('denoise', 'inpaint', 'block', 'cs', 'blur', 'downsample', 'tomo', 'limited_tomo', 'scaled', 'composed')

@st.composite
def operators(draw, kind):
    "An operator of the given kind with random sizes and parameters."
    seed = draw(st.integers(0, 2**31 - 1))
    C = draw(st.integers(1, 2))
    if kind in ('downsample', 'composed'):
        f = draw(st.sampled_from([1, 2, 4] if kind == 'downsample' else [2]))
        H, W = f*draw(st.integers(max(1, 8//f), 20//f)), f*draw(st.integers(max(1, 8//f), 20//f))
    else: H, W = draw(st.integers(8, 20)), draw(st.integers(8, 20))
    s = (C, H, W)
    blur = lambda: O.GaussianBlur(draw(st.sampled_from([1, 3, 5, 7])), draw(st.floats(0.3, 3.)), in_shape=s)
    if kind == 'denoise': return O.Identity(s)
    if kind == 'inpaint': return O.RandomInpainting(draw(st.floats(0.05, 1.)), seed, s)
    if kind == 'block':
        t, l = draw(st.integers(0, H - 1)), draw(st.integers(0, W - 1))
        return O.BlockInpainting((t, l, draw(st.integers(1, H - t)), draw(st.integers(1, W - l))), s)
    if kind == 'cs': return O.CompressedSensing(draw(st.integers(1, C*H*W)), seed, s)
    if kind == 'blur': return blur()
    if kind == 'downsample': return O.Downsample(f, s)
    if kind == 'tomo':
        return O.ParallelBeamTomography(draw(st.integers(1, 12)), draw(st.none() | st.integers(1, 30)), in_shape=s,
                                        method=draw(st.sampled_from(O.TOMO_METHODS)))
    if kind == 'limited_tomo':
        lo = draw(st.floats(-90., 90.))
        return O.LimitedAngleTomography(draw(st.integers(1, 10)), lo + draw(st.floats(5., 180.)), lo, in_shape=s)
    if kind == 'scaled': return blur() * draw(st.floats(-3., 3.).filter(lambda c: abs(c) > 1e-3))
    return O.Downsample(f, s) @ blur()   # 'composed': blur, then downsample

def _rand(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)

def _dot(a, b): return float((a*b).sum())

# ---------------------------------------------------------------- operators

@pytest.mark.parametrize('kind', KINDS)
@settings(max_examples=12, **SETTINGS)
@given(data=st.data(), batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_operator_adjoint_and_linear(kind, data, batch, seed):
    op = data.draw(operators(kind))
    x, x2 = _rand((batch,) + op.in_shape, seed), _rand((batch,) + op.in_shape, seed + 1)
    y = _rand((batch,) + tuple(op.out_shape), seed + 2)
    Ax, Aty = op.A(x), op.A_adjoint(y)
    assert Ax.shape == (batch,) + tuple(op.out_shape) and Aty.shape == x.shape
    assert Ax.dtype == Aty.dtype == torch.float64
    # adjointness <A x, y> = <x, A^T y>, to float64 rounding of float32 matrices
    scale = max(float(Ax.norm()*y.norm()), float(x.norm()*Aty.norm()), 1e-12)
    assert abs(_dot(Ax, y) - _dot(x, Aty)) <= 1e-10*scale, (op, _dot(Ax, y), _dot(x, Aty))
    # linearity A(a x + b x2) = a A x + b A x2, and of the adjoint
    a, b = data.draw(st.floats(-5, 5)), data.draw(st.floats(-5, 5))
    lhs, rhs = op.A(a*x + b*x2), a*Ax + b*op.A(x2)
    assert torch.allclose(lhs, rhs, rtol=1e-10, atol=1e-10*(1 + float(rhs.abs().max()))), op
    y2 = _rand(y.shape, seed + 3)
    lhs, rhs = op.A_adjoint(a*y + b*y2), a*Aty + b*op.A_adjoint(y2)
    assert torch.allclose(lhs, rhs, rtol=1e-10, atol=1e-10*(1 + float(rhs.abs().max()))), op
    # images are independent: the batched call equals one call per image
    assert torch.allclose(torch.cat([op.A(x[i:i+1]) for i in range(batch)]), Ax, rtol=1e-12, atol=1e-12)
    # float32 inputs stay float32 and agree with float64
    assert torch.allclose(op.A(x.float()).double(), Ax, rtol=1e-4, atol=1e-4*(1 + float(Ax.abs().max())))

@pytest.mark.parametrize('kind', KINDS)
@settings(max_examples=4, **SETTINGS)
@given(data=st.data())
def test_operator_norm_bounds_its_action(kind, data):
    "||A x|| <= ||A|| ||x|| for random x, and the Lanczos norm is finite and >= 0."
    op = data.draw(operators(kind))
    n = op.norm()
    assert math.isfinite(n) and n >= 0
    x = _rand((3,) + op.in_shape, data.draw(st.integers(0, 1000)))
    assert float(op.A(x).flatten(1).norm(dim=1).max()) <= n*float(x.flatten(1).norm(dim=1).max())*(1 + 1e-6) + 1e-9

# ---------------------------------------------------------------- solvers

torch.manual_seed(0)
VAE4 = VAE(4, width=8).eval().requires_grad_(False)

def _lin_gen(seed, k=3):
    return LinearGenerator(_rand((784, k), seed, torch.float32) / 28)

def _problem(G, kind, B, seed, noise):
    op = {'cs': lambda: O.CompressedSensing(30, seed), 'inpaint': lambda: O.RandomInpainting(0.3, seed),
          'blur': lambda: O.GaussianBlur(5, 1.)}[kind]()
    g = torch.Generator().manual_seed(seed + 7919)   # not the seed of the solvers' starting codes
    x = G(torch.randn(B, G.latent_dim, generator=g)).detach() if isinstance(G, LinearGenerator) else torch.rand(B, 1, 28, 28, generator=g)
    return op, x, op.measure(x, noise, seed=seed)

def _start_misfit(G, op, y, restarts, seed):
    "Data misfit (B, R) of the starting codes the solvers draw with the same seed."
    z0 = initial_latents(G, len(y), restarts, seed).flatten(0, 1)
    with torch.no_grad(): r = op(G(z0)) - y.repeat_interleave(restarts, 0)
    return r.flatten(1).pow(2).sum(1).view(len(y), restarts)

def _check(res, op, y, B, k, start):
    assert res.x.shape == (B, 1, 28, 28) and res.z.shape == (B, k)
    assert torch.isfinite(res.x).all() and torch.isfinite(res.z).all() and torch.isfinite(res.misfit).all()
    with torch.no_grad(): final = (op(res.x) - y).flatten(1).pow(2).sum(1)
    assert torch.allclose(final, res.misfit.min(1).values, rtol=1e-4, atol=1e-5)   # the reported misfit is the image's
    best_start = start.min(1).values
    assert (final <= best_start*(1 + 1e-5) + 1e-6).all(), (final, best_start)

solver_args = dict(gen=st.sampled_from(['vae', 'linear']), kind=st.sampled_from(['cs', 'inpaint', 'blur']),
                   B=st.integers(1, 3), restarts=st.integers(1, 3), seed=st.integers(0, 10_000), noise=st.sampled_from([0., 0.05]))

def _G(gen, seed): return VAE4 if gen == 'vae' else _lin_gen(seed)

@settings(max_examples=10, **SETTINGS)
@given(steps=st.integers(1, 25), lr=st.sampled_from([0.01, 0.05, 0.2]), **solver_args)
def test_csgm_properties(gen, kind, B, restarts, seed, noise, steps, lr):
    G = _G(gen, seed); op, x, y = _problem(G, kind, B, seed, noise)
    res = csgm(y, op, G, restarts=restarts, steps=steps, lr=lr, seed=seed)
    assert res.misfit.shape == (B, restarts) and res.all_z.shape == (B, restarts, G.latent_dim)
    _check(res, op, y, B, G.latent_dim, _start_misfit(G, op, y, restarts, seed))
    again = csgm(y, op, G, restarts=restarts, steps=steps, lr=lr, seed=seed)
    assert torch.equal(res.x, again.x) and torch.equal(res.misfit, again.misfit)   # bitwise reproducible

@settings(max_examples=8, **SETTINGS)
@given(steps=st.integers(1, 10), weight=st.sampled_from([0.01, 0.1, 1.]), basis=st.sampled_from(['pixel', 'dct']), **solver_args)
def test_sparse_deviation_properties(gen, kind, B, restarts, seed, noise, steps, weight, basis):
    G = VAE4   # the method clips x = G(z) + u to [0, 1], so compare with a generator whose images lie there
    op, x, y = _problem(G, kind, B, seed, noise)
    res = sparse_deviation(y, op, G, weight=weight, basis=basis, restarts=restarts, warmup_steps=steps, steps=steps, seed=seed)
    assert res.misfit.shape == (B, 1) and res.extra['u'].shape == (B, 1, 28, 28)
    _check(res, op, y, B, G.latent_dim, _start_misfit(G, op, y, restarts, seed))

@settings(max_examples=8, **SETTINGS)
@given(outer=st.integers(1, 4), inner=st.integers(1, 10), eta=st.sampled_from([0.1, 0.5, 1.]), **solver_args)
def test_pgd_gan_properties(gen, kind, B, restarts, seed, noise, outer, inner, eta):
    G = _G(gen, seed); op, x, y = _problem(G, kind, B, seed, noise)
    res = pgd_gan(y, op, G, restarts=restarts, outer=outer, inner=inner, eta=eta, seed=seed)
    assert res.misfit.shape == (B, restarts) and res.history.shape == (outer + 1, B, restarts)   # the start, then every round
    _check(res, op, y, B, G.latent_dim, _start_misfit(G, op, y, restarts, seed))

@settings(max_examples=5, **SETTINGS)
@given(steps=st.integers(1, 6), tv=st.sampled_from([0., 0.01, 0.1]), **solver_args)
def test_soft_constraint_properties(gen, kind, B, restarts, seed, noise, steps, tv):
    G = _G(gen, seed); op, x, y = _problem(G, kind, B, seed, noise)
    res = soft_constraint(y, op, G, restarts=restarts, warmup_steps=steps, steps=steps, seed=seed, tv=tv)
    assert res.x.shape == (B, 1, 28, 28) and torch.isfinite(res.x).all() and torch.isfinite(res.misfit).all()
    assert float(res.x.min()) >= 0 and float(res.x.max()) <= 1
