"Tests of genprior_nb.baselines: closed forms, transforms against scipy / PyWavelets, TV behaviour, the discrepancy rule and input checks."
import math
import warnings
import numpy as np
import pytest
import torch
import scipy.fft
import pywt
import fastcore.test as fct
from genprior_nb.baselines import (adjoint_recon, least_squares, tikhonov, tv_reconstruct, tv_norm, tv_objective,
                                   image_gradient, image_gradient_adjoint, dct_matrix, dct2, idct2, haar2, ihaar2,
                                   max_haar_level, soft_threshold, lasso, l1_dct, l1_wavelet, BASES, BASELINES,
                                   DEFAULT_LAMBDAS, default_lambda, baseline_reconstruct, discrepancy_lambda,
                                   applicable, fbp, biharmonic, bm3d_denoise, pnp_bm3d, TVPrimalDual, tv_step_ratio)
from genprior_nb.operators import (CompressedSensing, Identity, RandomInpainting, make_operator, OPERATORS,
                                   operator_name)
from genprior_nb.metrics import psnr, data_misfit
from genprior_nb.data import shapes_dataset, eval_images

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def small_cs():
    op = CompressedSensing(60, in_shape=(1, 12, 12))
    x = torch.rand(3, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return op, x, op.measure(x, 0.05, seed=1), op.dense_matrix()


def test_adjoint_least_squares_tikhonov_closed_forms(small_cs):
    op, x, y, M = small_cs
    fct.test_close(adjoint_recon(y, op), (y @ M).view(3, 1, 12, 12), eps=1e-10)
    for lam in (0.5, 0.02):
        ref = torch.linalg.solve(M.T @ M + lam*torch.eye(144, dtype=torch.float64), M.T @ y.T).T.reshape(3, 1, 12, 12)
        fct.test_close(tikhonov(y, op, lam, n_iter=300, tol=1e-12, clamp=False), ref, eps=1e-8)
        fct.test_close(tikhonov(y, op, lam, n_iter=300, tol=1e-12), ref.clamp(0, 1), eps=1e-8)
    ref = (torch.linalg.pinv(M) @ y.T).T.reshape(3, 1, 12, 12)
    # many more CG steps than the rank: converged images are frozen instead of blowing up
    fct.test_close(least_squares(y, op, n_iter=500, clamp=False), ref, eps=1e-6)


def test_float32_and_dtype(small_cs):
    op, x, y, _ = small_cs
    for m in [m for m in BASELINES if applicable(m, op)]:
        out = baseline_reconstruct(y.float(), op, m)
        fct.test_eq((out.shape, out.dtype), ((3, 1, 12, 12), torch.float32))
        assert torch.isfinite(out).all()
        if m != 'adjoint': assert out.min() >= 0 and out.max() <= 1


def test_gradient_adjoint_and_tv_norm():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 1, 7, 9, dtype=torch.float64, generator=g), torch.randn(2, 1, 2, 7, 9, dtype=torch.float64, generator=g)
    fct.test_close((image_gradient(a)*b).sum(), (a*image_gradient_adjoint(b)).sum(), eps=1e-12)
    step = torch.zeros(1, 1, 5, 8); step[..., 4:] = 0.5
    fct.test_eq(tv_norm(step), torch.tensor([2.5]))
    corner = torch.zeros(1, 1, 3, 3); corner[0, 0, 0, 0] = 1.  # forward differences: only the corner has a gradient, (-1, -1)
    fct.test_close(tv_norm(corner), torch.tensor([math.sqrt(2.)]), eps=1e-6)


def test_tv_denoising_piecewise_constant():
    den = Identity()
    x = shapes_dataset(6, seed=7); y = den.measure(x, 0.1, seed=0)
    xt = tv_reconstruct(y, den, lam=0.08)
    assert psnr(xt, x).mean() > psnr(y, x).mean() + 7
    obj = lambda v: tv_objective(v, y, den, 0.08)
    assert (obj(xt) < obj(y.clamp(0, 1))).all() and (obj(xt) <= obj(x)).all()
    assert xt.min() >= 0 and xt.max() <= 1
    flat = torch.full((2, 1, 28, 28), 0.4); yf = den.measure(flat, 0.02, seed=3)
    xf = tv_reconstruct(yf, den, lam=0.1)
    assert xf.flatten(1).std(1).max() < 2e-3 and (xf - 0.4).abs().max() < 0.01
    # the box can be switched off, and the stopping rule ends early on an easy problem
    xn = tv_reconstruct(yf - 1, den, lam=0.1, box=None)
    assert xn.max() < 0


def test_transforms_orthonormal_and_reference():
    eye = torch.eye(16*12, dtype=torch.float64).view(-1, 16, 12)
    for fwd, inv in ((dct2, idct2), (haar2, ihaar2)):
        W = fwd(eye).reshape(192, 192)
        fct.test_close(W @ W.T, torch.eye(192, dtype=torch.float64), eps=1e-12)
        fct.test_close(inv(fwd(eye)), eye, eps=1e-12)
    v = torch.rand(5, dtype=torch.float64)
    fct.test_close(dct_matrix(5) @ v, torch.from_numpy(scipy.fft.dct(v.numpy(), norm='ortho')), eps=1e-12)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    fct.test_close(dct2(x), torch.from_numpy(scipy.fft.dctn(x.numpy(), axes=(-2, -1), norm='ortho')), eps=1e-12)
    for lv in (1, 2):
        ref = np.stack([pywt.coeffs_to_array(pywt.wavedec2(im[0].numpy(), 'haar', mode='periodization', level=lv))[0] for im in x])
        fct.test_close(haar2(x, lv)[:, 0], torch.from_numpy(ref), eps=1e-12)
    fct.test_eq((max_haar_level(28, 28), max_haar_level(32, 64), max_haar_level(7, 8)), (2, 5, 0))
    fct.test_fail(lambda: haar2(x, 3), contains='level must be an integer in [1, 2], got 3')
    fct.test_fail(lambda: haar2(torch.zeros(1, 1, 7, 7)), contains='needs even image sides')


def test_fista_closed_form_identity():
    den = Identity()
    x = shapes_dataset(3, seed=2).double(); y = den.measure(x, 0.1, seed=4)
    for basis in BASES:
        fwd = {'pixel': lambda v: v, 'dct': dct2, 'haar': haar2}[basis]
        inv = {'pixel': lambda v: v, 'dct': idct2, 'haar': ihaar2}[basis]
        fct.test_close(lasso(y, den, 0.07, basis, clamp=False), inv(soft_threshold(fwd(y), 0.07)), eps=1e-12)
    fct.test_close(l1_dct(y, den, 0.05, clamp=False), idct2(soft_threshold(dct2(y), 0.05)), eps=1e-12)
    fct.test_close(l1_wavelet(y, den, 0.05, clamp=False), ihaar2(soft_threshold(haar2(y), 0.05)), eps=1e-12)
    fct.test_eq(soft_threshold(torch.tensor([-2., -0.5, 0., 0.5, 2.]), 1.), torch.tensor([-1., 0., 0., 0., 1.]))
    fct.test_fail(lambda: lasso(y, den, 0.1, 'curvelet'), contains="basis must be one of ['dct', 'haar', 'pixel']")


def test_lasso_optimality_compressed_sensing(small_cs):
    op, x, y, M = small_cs
    lam = 0.05
    xl = lasso(y, op, lam, 'dct', n_iter=3000, tol=0, clamp=False)
    g = dct2(op.A_adjoint(y - op(xl))); c = dct2(xl); on = c.abs() > 1e-8
    assert g.abs().max() < lam + 1e-6
    assert ((g[on] - lam*torch.sign(c[on])).abs() < 1e-6).all()


def test_registry_defaults_and_errors(small_cs):
    op, x, y, _ = small_cs
    fct.test_eq(BASELINES, ('adjoint', 'least_squares', 'tikhonov', 'tv', 'l1_dct', 'l1_wavelet', 'fbp', 'biharmonic', 'bm3d', 'pnp_bm3d'))
    fct.test_fail(lambda: baseline_reconstruct(y, op, 'wiener'),
                  contains="method must be one of ['adjoint', 'biharmonic', 'bm3d', 'fbp', 'l1_dct', 'l1_wavelet', 'least_squares', 'pnp_bm3d', 'tikhonov', 'tv'], got 'wiener'")
    fct.test_fail(lambda: baseline_reconstruct(y, op, 'biharmonic'), contains='biharmonic needs an Inpainting operator')
    fct.test_fail(lambda: baseline_reconstruct(y, op, 'bm3d'), contains='bm3d denoises: op must be the identity')
    fct.test_fail(lambda: baseline_reconstruct(y[:, :10], op, 'tv'), contains='y must have shape (B, 60)')
    fct.test_fail(lambda: tikhonov(y.numpy(), op), contains='y must be a torch.Tensor')
    bad = y.clone(); bad[0, 3] = float('nan')
    for m in [m for m in BASELINES if applicable(m, op)]: fct.test_fail(lambda: baseline_reconstruct(bad, op, m), contains='y contains NaN or inf values')
    fct.test_fail(lambda: tikhonov(y, 'A'), contains='op must be a genprior_nb LinearOperator')
    fct.test_fail(lambda: tikhonov(y, op, 0), contains='lam must be a finite number in (0, inf], got 0')
    fct.test_fail(lambda: least_squares(y, op, n_iter=0), contains='n_iter must be an integer in [1, inf], got 0')
    fct.test_fail(lambda: baseline_reconstruct(y, op, 'least_squares', lam=1.), contains="lam is not used by method 'least_squares'")
    fct.test_fail(lambda: tv_reconstruct(y, op, box=(1.,)), contains='box must be (lo, hi) or None')
    for m in DEFAULT_LAMBDAS:
        if m == 'pnp_bm3d': fct.test_eq(set(DEFAULT_LAMBDAS[m]), {'default'}); continue   # PnP is tuned per problem only
        assert set(DEFAULT_LAMBDAS[m]) == set(OPERATORS) | {'default'}
        fct.test_eq(default_lambda(m, make_operator('cs', m=150)), DEFAULT_LAMBDAS[m]['cs'])
        fct.test_eq(default_lambda(m, 2. * Identity()), DEFAULT_LAMBDAS[m]['default'])
    fct.test_eq([operator_name(make_operator(n)) for n in OPERATORS], list(OPERATORS))
    # lam=None uses the default weight
    fct.test_eq(baseline_reconstruct(y, op, 'tikhonov'), tikhonov(y, op, DEFAULT_LAMBDAS['tikhonov']['cs']))


def test_discrepancy_lambda(small_cs):
    op, x, y, _ = small_cs
    sigma, grid = 0.05, torch.logspace(0, -4, 17, dtype=torch.float64)
    bound = 60 * sigma**2
    lam, xd = discrepancy_lambda(y, op, 'tikhonov', sigma)
    fct.test_eq((lam.shape, xd.shape), ((3,), (3, 1, 12, 12)))
    for i, l in enumerate(lam.tolist()):
        xi = tikhonov(y[i:i+1], op, l, clamp=False)
        assert data_misfit(op, xi, y[i:i+1]).item() <= bound
        bigger = grid[grid > l*1.0001]
        if len(bigger): assert data_misfit(op, tikhonov(y[i:i+1], op, bigger.min().item(), clamp=False), y[i:i+1]).item() > bound
        fct.test_close(xd[i:i+1], xi.clamp(0, 1), eps=1e-6)
    lb, _ = discrepancy_lambda(y, op, 'tikhonov', sigma, per_image=False)
    fct.test_eq(lb.unique().numel(), 1)
    # a callable solver, and the warning when no weight of the grid fits the data well enough
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        lam2, _ = discrepancy_lambda(y, op, lambda yy, oo, l: torch.zeros((len(yy), 1, 12, 12), dtype=yy.dtype), sigma, lams=[1., 0.1])
    assert any('never reached' in str(m.message) for m in w)
    fct.test_eq(lam2, torch.full((3,), 0.1, dtype=torch.float64))
    fct.test_fail(lambda: discrepancy_lambda(y, op, 'adjoint', sigma), contains="solver must be one of ['l1_dct', 'l1_wavelet', 'pnp_bm3d', 'tikhonov', 'tv']")
    fct.test_fail(lambda: discrepancy_lambda(y, op, 'tv', 0.), contains='noise_std must be a finite number in (0, inf], got 0')
    fct.test_fail(lambda: discrepancy_lambda(y, op, 'tv', sigma, lams=[0.1, -1.]), contains='lams must be positive finite numbers')
    fct.test_fail(lambda: discrepancy_lambda(y, op, 3, sigma), contains='solver must be a method name or a callable')


def test_tv_beats_noisy_on_inpainting():
    x = shapes_dataset(4, seed=11)
    op = RandomInpainting(0.5); y = op.measure(x, 0.05, seed=0)
    assert psnr(baseline_reconstruct(y, op, 'tv'), x).mean() > psnr(y.clamp(0, 1), x).mean() + 5

def test_tv_primal_dual_state_and_anchor():
    "TVPrimalDual keeps its state between runs (150 + 150 iterations = 300) and its anchor term pulls x onto the anchor."
    from genprior_nb.baselines import TVPrimalDual
    op = CompressedSensing(200, seed=0)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = op.measure(x, 0.05, seed=0)
    pd = TVPrimalDual(y, op, 0.02, step_ratio=tv_step_ratio(0.02)); pd.run(150)
    fct.test_eq(pd.run(150), tv_reconstruct(y, op, 0.02, n_iter=300, tol=0))
    g = torch.full_like(x, 0.7)
    fct.test_close(TVPrimalDual(y, op, 0.02).run(300, anchor=g, anchor_weight=1e6), g, eps=1e-3)
    w = torch.tensor([0., 1e6, 0.]).view(3, 1, 1, 1)   # per-image weights: only the middle image is pinned
    xa = TVPrimalDual(y, op, 0.02).run(300, anchor=g, anchor_weight=w)
    fct.test_close(xa[1], g[1], eps=1e-3); fct.test_eq(xa[[0, 2]], tv_reconstruct(y, op, 0.02, n_iter=300, tol=0, step_ratio=1.)[[0, 2]])


# ---------------------------------------------------------------- the strongest classical methods (issue: honest comparisons)

def test_biharmonic_matches_scikit_image_on_blocks_and_rgb():
    from skimage.restoration import inpaint_biharmonic
    from genprior_nb.operators import BlockInpainting, RandomInpainting
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for op in (BlockInpainting(in_shape=(3, 16, 16)), RandomInpainting(0.3, seed=1, in_shape=(3, 16, 16))):
        y = op.measure(x, 0.02, seed=0)
        ref = inpaint_biharmonic(y[1].double().numpy(), (op.mask[0] == 0).numpy(), channel_axis=0)
        fct.test_close(biharmonic(y, op, clamp=False)[1], torch.from_numpy(ref).float(), eps=1e-6)

def test_bm3d_matches_the_package_and_estimates_sigma():
    import bm3d
    from skimage.restoration import estimate_sigma
    x = eval_images(2, seed=1)[0]; op = Identity(); y = op.measure(x, 0.1, seed=0)
    prof = bm3d.BM3DProfile(); prof.num_threads = 1
    fct.test_close(bm3d_denoise(y, op, 0.1, clamp=False)[0, 0], torch.from_numpy(bm3d.bm3d(y[0, 0].double().numpy(), 0.1, profile=prof)).float(), eps=1e-6)
    est = float(estimate_sigma(y[1].double().numpy(), channel_axis=0, average_sigmas=True))
    assert abs(est - 0.1) < 0.03, est
    fct.test_close(bm3d_denoise(y, op, clamp=False)[1, 0], torch.from_numpy(bm3d.bm3d(y[1, 0].double().numpy(), est, profile=prof)).float(), eps=1e-6)

def test_pnp_bm3d_settings_and_errors():
    op = CompressedSensing(50, in_shape=(1, 16, 16)); x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    y = op.measure(x, 0.05, seed=0)
    out = pnp_bm3d(y, op, 1.0, 0.05, n_iter=3)
    fct.test_eq(out.shape, x.shape); assert 0 <= out.min() and out.max() <= 1
    fct.test_fail(lambda: pnp_bm3d(y, op, 1.0, 0.2, sigma_max=0.1), contains='sigma_max must be a finite number in [0.2, inf], got 0.1')

@pytest.mark.parametrize('name,level,lam', [('inpaint', 0.1, 0.002), ('cs', 50, 0.0025), ('tomo', 10, 0.005)])
def test_tv_converges_at_the_default_cap(name, level, lam):
    """tv_reconstruct's stopping rule (primal-dual gap) fires, and its result is within 0.02 dB of a 20,000-iteration run,
    at the small end of the weights the tuning sweeps (1/8 of the defaults), where convergence is slowest. On 16x16 crops of two held-out garments,
    to keep the 20,000-iteration references cheap; the benchmark images are 28x28."""
    x = eval_images(2, seed=1)[0][..., 6:22, 6:22].double().contiguous()
    op = make_operator(name, level, in_shape=(1, 16, 16)); y = op.measure(x, 0.05, seed=0)
    pd = TVPrimalDual(y, op, lam, step_ratio=tv_step_ratio(lam))
    xs = pd.run(10_000, tol=1e-4)
    assert pd.iterations < 10_000, f'the stopping rule did not fire ({pd.iterations} iterations)'
    ref = TVPrimalDual(y, op, lam, step_ratio=tv_step_ratio(lam)).run(20_000)
    d = (psnr(xs, x) - psnr(ref, x)).abs().max().item()
    assert d < 0.02, (pd.iterations, d)
    fct.test_eq(tv_reconstruct(y, op, lam), xs)

def test_fbp_baseline_is_the_operators_fbp_and_applies_to_tomography_only():
    from genprior_nb.operators import ParallelBeamTomography, LimitedAngleTomography
    x = eval_images(2, seed=1)[0]
    op = ParallelBeamTomography(30); y = op.measure(x, 0.05, seed=0)
    fct.test_eq(baseline_reconstruct(y, op, 'fbp', clamp=False), op.fbp(y))
    fct.test_close(fbp(y * 2, 2 * op, clamp=False), op.fbp(y), eps=1e-5)   # a scaled operator: the scale is divided out
    assert psnr(fbp(y, op, 'hann'), x).mean() > psnr(adjoint_recon(y, op, clamp=True), x).mean()
    assert applicable('fbp', LimitedAngleTomography(10)) and not applicable('fbp', CompressedSensing(50))
    fct.test_fail(lambda: fbp(CompressedSensing(50).measure(x), CompressedSensing(50)), contains='fbp needs a ParallelBeamTomography operator')
