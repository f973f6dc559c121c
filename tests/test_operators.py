"""Tests of genprior_nb.operators: adjoints at several sizes and channel counts, norms, seeds, references (scipy, skimage,
analytic disk and ellipses), filtered back-projection, the extension contract, input checks, noise."""
import math
import numpy as np
import pytest
import torch
import fastcore.test as fct
import scipy.ndimage as ndi
from hypothesis import given, settings, strategies as st
from skimage.transform import radon, iradon

from genprior_nb.operators import (LinearOperator, Identity, Inpainting, RandomInpainting, BlockInpainting, CompressedSensing,
                                   GaussianBlur, Downsample, ParallelBeamTomography, LimitedAngleTomography, ScaledOperator,
                                   ComposedOperator, OPERATORS, make_operator, gaussian_kernel, radon_matrix, TOMO_METHODS,
                                   FBP_FILTERS, fbp_filter)

torch.set_num_threads(1)
SMALL = (1, 12, 12)

def small(name, **kw):
    "A small instance of every registered operator (12x12 images keep dense SVDs cheap)."
    if name == 'cs': kw.setdefault('m', 60)
    return make_operator(name, in_shape=SMALL, **kw)

# extra cases beyond the registry: non-default parameters, sparse storage, several channels, algebra
EXTRA = {
    'inpaint_keep1': lambda: RandomInpainting(1.0, in_shape=SMALL),
    'block_corner': lambda: BlockInpainting((0, 0, 5, 3), in_shape=SMALL),
    'blur_w7_rgb': lambda: GaussianBlur(7, 2.0, in_shape=(3, 12, 12)),
    'blur_w1': lambda: GaussianBlur(1, 0.5, in_shape=SMALL),
    'downsample4_2ch': lambda: Downsample(4, in_shape=(2, 12, 12)),
    'cs_rect_2ch': lambda: CompressedSensing(100, seed=3, in_shape=(2, 8, 10)),
    'tomo_sparse': lambda: ParallelBeamTomography(10, in_shape=SMALL, method='sparse'),
    'tomo_matrix_free_rgb': lambda: ParallelBeamTomography(5, in_shape=(3, 12, 12), method='matrix_free'),
    'limited_matrix_free': lambda: LimitedAngleTomography(4, 100., in_shape=(2, 9, 11), method='matrix_free'),
    'inpaint_rgb': lambda: RandomInpainting(0.3, in_shape=(3, 12, 12)),
    'tomo_rect_det': lambda: ParallelBeamTomography(7, n_detectors=9, in_shape=(1, 10, 14)),
    'limited_45_135': lambda: LimitedAngleTomography(8, max_angle_deg=135., min_angle_deg=45., in_shape=SMALL),
    'scaled': lambda: -3.0 * GaussianBlur(in_shape=SMALL),
    'composed': lambda: CompressedSensing(50, in_shape=SMALL) @ GaussianBlur(in_shape=SMALL) @ RandomInpainting(0.5, in_shape=SMALL),
    'composed_tomo': lambda: ParallelBeamTomography(6, in_shape=(1, 6, 6)) @ Downsample(2, in_shape=SMALL),
}
ALL = {**{n: (lambda n=n: small(n)) for n in OPERATORS}, **EXTRA}

@pytest.fixture(scope='module', params=list(ALL))
def op(request): return ALL[request.param]()

# ---------------------------------------------------------------------------------------------------------------- adjoints
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_adjointness_float64(op, seed):
    assert op.adjointness_error(seed=seed) < 1e-6
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn((3,) + op.in_shape, generator=g, dtype=torch.float64)
    y = torch.randn((3,) + op.out_shape, generator=g, dtype=torch.float64)
    lhs, rhs = (op.A(x)*y).sum().item(), (x*op.A_adjoint(y)).sum().item()
    assert abs(lhs - rhs) <= 1e-6 * op.A(x).norm().item() * y.norm().item()

def test_adjoint_is_dense_transpose(op):
    M = op.dense_matrix()
    g = torch.Generator().manual_seed(0)
    y = torch.randn((2,) + op.out_shape, generator=g, dtype=torch.float64)
    fct.test_close(op.A_adjoint(y).reshape(2, -1), y.reshape(2, -1) @ M, eps=1e-10)

@pytest.mark.parametrize('name', OPERATORS)
def test_adjointness_full_size(name):
    op = make_operator(name)
    assert op.in_shape == (1, 28, 28)
    assert op.adjointness_error() < 1e-6
    assert op.adjointness_error(dtype=torch.float32) < 1e-4

# ------------------------------------------------------------------------------------------------------------------- norms
def test_norm_vs_svd(op):
    smax = torch.linalg.matrix_norm(op.dense_matrix(), ord=2).item()
    assert abs(op.norm() - smax) <= 1e-5*smax
    assert op.norm() <= smax*(1 + 1e-6)  # a Ritz value is a lower bound (up to float32 rounding)
    assert abs(op.double().norm(recompute=True) - smax) <= 1e-9*smax   # in float64 to float64 precision

def test_normalized_has_norm_one(op):
    nop = op.normalized()
    assert isinstance(nop, ScaledOperator)
    fct.test_close(torch.linalg.matrix_norm(nop.dense_matrix(), ord=2).item(), 1., eps=0.01)
    fct.test_close(nop.norm(recompute=True), 1., eps=0.01)

def test_norm_is_cached_and_seeded():
    op = small('cs')
    n1 = op.norm(); assert op.norm() == n1
    op._norms.clear(); assert op.norm() == n1
    fct.test_close(op.norm(seed=5), n1, eps=1e-3*n1)

def test_known_norms():
    fct.test_close(Identity().norm(), 1., eps=1e-7)
    fct.test_close(RandomInpainting(0.1).norm(), 1., eps=1e-7)
    fct.test_close(Downsample(7).norm(), 1/7, eps=1e-8)
    fct.test_close(make_operator('blur', normalize=True).norm(recompute=True), 1., eps=1e-6)

def test_norm_in_the_operators_dtype_without_copies():
    "norm() runs in the buffers' dtype (no float64 copy of the matrix is made) and is cached per (n_iter, seed, tol)."
    op = CompressedSensing(200, in_shape=(1, 24, 24))
    seen = []
    orig = op._A
    op._A = lambda x: (seen.append(x.dtype), orig(x))[1]
    n32 = op.norm()
    assert set(seen) == {torch.float32} and op.__dict__.get('_variant') is None
    k = len(seen); assert op.norm() == n32 and len(seen) == k          # cached: no new application
    smax = torch.linalg.matrix_norm(op.matrix.double(), ord=2).item()
    assert abs(n32 - smax) <= 2e-6*smax
    assert len(seen) < 100   # Lanczos: a few tens of applications of A^T A where power iteration needs hundreds

# ------------------------------------------------------------------------------------------------------------- composition
def test_composition():
    A, B = GaussianBlur(in_shape=SMALL), RandomInpainting(0.4, seed=2, in_shape=SMALL)
    C = A @ B
    fct.test_eq(type(C), ComposedOperator)
    fct.test_close(C.dense_matrix(), A.dense_matrix() @ B.dense_matrix(), eps=1e-12)
    fct.test_eq(A.compose(B).dense_matrix(), C.dense_matrix())
    fct.test_close((2.5 * C).dense_matrix(), 2.5 * C.dense_matrix(), eps=1e-12)
    fct.test_close((C * 2.5).dense_matrix(), 2.5 * C.dense_matrix(), eps=1e-12)
    assert C.adjointness_error() < 1e-12 and (2.5 * C).adjointness_error() < 1e-12
    fct.test_fail(lambda: CompressedSensing(10, in_shape=SMALL) @ CompressedSensing(10, in_shape=SMALL), contains='cannot compose')
    fct.test_fail(lambda: A.compose(3), contains='other must be a LinearOperator')
    with pytest.raises(TypeError): A @ torch.zeros(1, 1, 12, 12)
    with pytest.raises(TypeError): A * B

# ------------------------------------------------------------------------------------------------------------ reproducible
def test_seeded_operators_reproducible():
    fct.test_eq(RandomInpainting(0.25, seed=7).mask, RandomInpainting(0.25, seed=7).mask)
    assert not torch.equal(RandomInpainting(0.25, seed=7).mask, RandomInpainting(0.25, seed=8).mask)
    fct.test_eq(CompressedSensing(150, seed=7).matrix, CompressedSensing(150, seed=7).matrix)
    assert not torch.equal(CompressedSensing(150, seed=7).matrix, CompressedSensing(150, seed=8).matrix)
    fct.test_eq(ParallelBeamTomography(10).matrix.to_dense(), ParallelBeamTomography(10).matrix.to_dense())

def test_mask_counts_and_statistics():
    for keep in (0.01, 0.25, 0.5, 0.999, 1.0):
        fct.test_eq(int(RandomInpainting(keep).mask.sum()), round(keep*784))
    fct.test_eq(RandomInpainting(0.25).out_shape, (1, 28, 28))
    m = BlockInpainting().mask[0]
    fct.test_eq(int((m == 0).sum()), 14*14); fct.test_eq(m[7:21, 7:21].sum().item(), 0.)
    M = CompressedSensing(150).matrix.double()
    fct.test_close(M.var().item(), 1/150, eps=0.05/150)
    fct.test_close(M.mean().item(), 0., eps=0.01/math.sqrt(150))

def test_default_shapes():
    x = torch.rand(2, 1, 28, 28)
    expect = {'denoise': (1, 28, 28), 'inpaint': (1, 28, 28), 'block': (1, 28, 28), 'cs': (150,), 'blur': (1, 28, 28),
              'downsample': (1, 14, 14), 'tomo': (1, 30, 40), 'limited_tomo': (1, 30, 40)}
    for name in OPERATORS:
        op = make_operator(name)
        fct.test_eq(op.out_shape, expect[name]); fct.test_eq(op(x).shape, (2,) + expect[name])
        fct.test_eq(op.A_adjoint(op(x)).shape, x.shape)
        fct.test_eq(op(x[:0]).shape, (0,) + expect[name])
    np.testing.assert_allclose(make_operator('limited_tomo').angles, np.arange(30)*3.)
    np.testing.assert_allclose(make_operator('tomo').angles, np.arange(30)*6.)

# ----------------------------------------------------------------------------------------------------------- blur vs scipy
@pytest.mark.parametrize('width,sigma', [(5, 1.0), (3, 0.7), (7, 2.0), (9, 1.5)])
def test_blur_equals_scipy(width, sigma):
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(width))
    b = GaussianBlur(width, sigma).double()
    k = gaussian_kernel(width, sigma).numpy()
    for i in range(3):
        fct.test_close(b(x)[i, 0].numpy(), ndi.convolve(x[i, 0].numpy(), k, mode='constant', cval=0.), eps=1e-6)
        fct.test_close(b.A_adjoint(x)[i, 0].numpy(), ndi.correlate(x[i, 0].numpy(), k, mode='constant', cval=0.), eps=1e-6)
    fct.test_close(gaussian_kernel(width, sigma).sum().item(), 1., eps=1e-12)

# -------------------------------------------------------------------------------------------------------------- tomography
def _disk(n, r, sub=16, centre=None):
    "Uniform disk of radius r about `centre` (default: the image centre n/2), pixel values = covered area fractions."
    c = (torch.arange(n*sub, dtype=torch.float64) + 0.5)/sub - (n/2 if centre is None else centre)
    return (c[:, None]**2 + c[None, :]**2 <= r**2).double().view(n, sub, n, sub).mean((1, 3))

SHEPP_LOGAN = [  # modified Shepp-Logan: value, semi-axes a, b, centre x, y (y up, image half-width 1), angle (degrees)
    (1.0, .69, .92, 0., 0., 0.), (-.8, .6624, .874, 0., -.0184, 0.), (-.2, .11, .31, .22, 0., -18.), (-.2, .16, .41, -.22, 0., 18.),
    (.1, .21, .25, 0., .35, 0.), (.1, .046, .046, 0., .1, 0.), (.1, .046, .046, 0., -.1, 0.), (.1, .046, .023, -.08, -.605, 0.),
    (.1, .023, .023, 0., -.606, 0.), (.1, .023, .046, .06, -.605, 0.)]

def _ellipses(n, ellipses=SHEPP_LOGAN, sub=4):
    g = ((torch.arange(n*sub, dtype=torch.float64) + 0.5)/sub - n/2) / (n/2)
    X, Y = g[None, :], -g[:, None]; img = torch.zeros(n*sub, n*sub, dtype=torch.float64)
    for v, a, b, x0, y0, phi in ellipses:
        p = math.radians(phi)
        xr, yr = (X - x0)*math.cos(p) + (Y - y0)*math.sin(p), -(X - x0)*math.sin(p) + (Y - y0)*math.cos(p)
        img += v*((xr/a)**2 + (yr/b)**2 <= 1)
    return img.view(n, sub, n, sub).mean((1, 3))

def _rel(a, b): return np.linalg.norm(a - b) / np.linalg.norm(b)

def _ours_vs_skimage(img, theta, sk_img=None):
    ref = radon((img if sk_img is None else sk_img).numpy(), theta, circle=False).T; N = ref.shape[1]
    op = ParallelBeamTomography(angles=theta, n_detectors=2*(N//2) + 1, in_shape=(1,) + tuple(img.shape))
    return op(img[None, None])[0, 0, :, :N].numpy(), ref

@pytest.mark.parametrize('n', [64, 128])
def test_tomography_vs_analytic_disk(n):
    r = 0.4*n; theta = np.arange(30)*6.
    op = ParallelBeamTomography(angles=theta, in_shape=(1, n, n))
    ours = op(_disk(n, r)[None, None])[0, 0].numpy()
    s = np.arange(op.n_detectors) - (op.n_detectors - 1)/2
    exact = np.broadcast_to(2*np.sqrt(np.clip(r**2 - s**2, 0, None)), ours.shape)
    assert _rel(ours, exact) < 0.02                          # all detector bins
    inner = np.abs(s) <= r - 2
    assert _rel(ours[:, inner], exact[:, inner]) < 0.003      # away from the rim

@pytest.mark.parametrize('n', [64, 128])
def test_tomography_vs_skimage_even_sizes(n):
    "skimage rotates about pixel n//2, we about (n-1)/2: each gets the disk drawn about its own centre."
    ours, ref = _ours_vs_skimage(_disk(n, 0.4*n), np.arange(30)*6., sk_img=_disk(n, 0.4*n, centre=n//2 + 0.5))
    assert _rel(ours, ref) < 0.01

@pytest.mark.parametrize('n', [65, 129])
def test_tomography_vs_skimage_same_image(n):
    ours, ref = _ours_vs_skimage(_ellipses(n), np.arange(30)*6.)
    assert _rel(ours, ref) < 0.01

def test_tomography_vs_skimage_asymmetric():
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(33, 33, dtype=torch.float64)
    img[5:15, 8:25] = 1.; img[18:30, 4:10] = 0.5; img += 0.3*torch.rand(33, 33, generator=g, dtype=torch.float64)
    theta = np.array([0., 17., 45., 90., 133., 179.])
    ours, ref = _ours_vs_skimage(img, theta)
    assert _rel(ours, ref) < 0.02

def test_tomography_projection_sums():
    "Every projection of an image integrates to its total mass (rays cover the whole image)."
    op = ParallelBeamTomography(17, in_shape=(1, 20, 20))
    x = torch.rand(2, 1, 20, 20, dtype=torch.float64)
    fct.test_close(op(x).sum(-1), x.sum((-1, -2))[..., None].expand(2, 1, 17), eps=2e-3*x.sum().item()/2)

def test_radon_matrix_sparse_equals_dense():
    d = radon_matrix(10, 12, [0., 33., 90.], 17)
    s = radon_matrix(10, 12, [0., 33., 90.], 17, sparse=True)
    assert s.layout == torch.sparse_csr and s.col_indices().dtype == torch.int32
    fct.test_close(s.to_dense(), d, eps=1e-14)
    fct.test_eq(radon_matrix(10, 12, [0., 33.], 17, sparse=True, dtype=torch.float32).values().dtype, torch.float32)

@pytest.mark.parametrize('shape', [(1, 12, 12), (3, 16, 10), (2, 1, 7)])
def test_tomography_methods_agree(shape):
    ops = {m: ParallelBeamTomography(6, in_shape=shape, method=m) for m in TOMO_METHODS}
    x = torch.rand((3,) + shape, dtype=torch.float64); y = torch.rand((3,) + ops['dense'].out_shape, dtype=torch.float64)
    for m, op in ops.items():
        fct.test_close(op(x), ops['dense'](x), eps=1e-5*float(ops['dense'](x).abs().max()))
        fct.test_close(op.A_adjoint(y), ops['dense'].A_adjoint(y), eps=1e-5*float(ops['dense'].A_adjoint(y).abs().max()))
        assert op.adjointness_error() < 1e-12 and op(x.float()).dtype == torch.float32

def test_tomography_matrix_free_at_64_with_3_channels():
    sp, mf = (ParallelBeamTomography(20, in_shape=(3, 64, 64), method=m) for m in ('sparse', 'matrix_free'))
    x = torch.rand(2, 3, 64, 64)
    fct.test_close(mf(x), sp(x), eps=1e-4*float(sp(x).abs().max()))
    fct.test_close(mf.A_adjoint(sp(x)), sp.A_adjoint(sp(x)), eps=1e-4*float(sp.A_adjoint(sp(x)).abs().max()))

@pytest.mark.parametrize('method', ['sparse', 'matrix_free'])
def test_tomography_gradients_any_order(method):
    "The sparse and matrix-free maps are autograd functions whose backward is the other map: exact gradients, also of gradients."
    op = ParallelBeamTomography(3, in_shape=(1, 4, 5), method=method).double()
    x = torch.rand(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op(v), (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda v: op(v)**2, (x,), fast_mode=True)
    y = torch.rand((1,) + op.out_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op.A_adjoint(v), (y,), fast_mode=True)

def test_tomography_auto_method_and_errors():
    assert ParallelBeamTomography.auto_method(30, 28, 28) == 'dense'      # the shipped problems: bit for bit as before
    assert ParallelBeamTomography.auto_method(180, 28, 28) == 'sparse'
    assert ParallelBeamTomography.auto_method(30, 64, 64) == 'sparse'
    assert ParallelBeamTomography.auto_method(180, 128, 128) == 'sparse'
    assert ParallelBeamTomography.auto_method(180, 256, 256) == 'matrix_free'
    assert ParallelBeamTomography(180, in_shape=(1, 256, 256)).method == 'matrix_free'
    fct.test_fail(lambda: ParallelBeamTomography(method='fft'), contains="method must be one of ['dense', 'matrix_free', 'sparse'], got 'fft'")
    fct.test_fail(lambda: ParallelBeamTomography(step=0), contains='step must be a finite number in (0, inf], got 0')

def test_tomography_28_storage():
    "At 28x28 the default is the dense matrix of earlier versions; the sparse one equals it to float32 rounding."
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for name in ('tomo', 'limited_tomo'):
        sp, de = make_operator(name, method='sparse'), make_operator(name)
        assert de.method == 'dense' and de.matrix.shape == (30*40, 784)
        fct.test_close(sp(x), de(x), eps=1e-5*float(de(x).abs().max()))
        fct.test_close(sp.norm(), de.norm(), eps=1e-6*de.norm())

# ------------------------------------------------------------------------------------------------- filtered back-projection
@pytest.mark.parametrize('n', [64, 128])
def test_fbp_recovers_a_disk(n):
    """FBP (ramp, 180 angles) of the operator's projection of a disk of radius 0.3 n, 3 pixels from the rim: within 1% of
    1 inside and 2% of 0 outside, mean error inside below 1e-3; relative L2 error under 8% (ramp) and 12% (Hann)."""
    r = 0.3*n; d = _disk(n, r, sub=8).float(); op = ParallelBeamTomography(180, in_shape=(1, n, n), method='matrix_free')
    y = op(d[None, None]); rec = op.fbp(y)[0, 0]
    c = torch.arange(n) - (n - 1)/2; dist = (c[:, None]**2 + c[None, :]**2).sqrt()
    inner, outer = dist <= r - 3, dist >= r + 3
    assert float((rec - 1)[inner].abs().max()) < 0.01 and float(rec[outer].abs().max()) < 0.02
    assert abs(float((rec - 1)[inner].mean())) < 1e-3
    assert _rel(rec.numpy(), d.numpy()) < 0.08 and _rel(op.fbp(y, 'hann')[0, 0].numpy(), d.numpy()) < 0.12

@pytest.mark.parametrize('filt', FBP_FILTERS)
def test_fbp_vs_iradon(filt):
    n, th = 65, np.arange(0., 180., 2.)
    img = _ellipses(n); sino = radon(img.numpy(), th, circle=False); N = sino.shape[0]
    op = ParallelBeamTomography(angles=th, n_detectors=2*(N//2) + 1, in_shape=(1, n, n))
    y = torch.zeros((1,) + op.out_shape, dtype=torch.float64); y[0, 0, :, :N] = torch.as_tensor(sino.T)
    ours, ref = op.fbp(y, filt)[0, 0].numpy(), iradon(sino, th, circle=False, output_size=n, filter_name=filt)
    assert _rel(ours, ref) < 0.005

def test_fbp_batched_channels_dtype_and_errors():
    op = ParallelBeamTomography(40, in_shape=(3, 20, 20))
    x = torch.rand(4, 3, 20, 20); y = op(x)
    rec = op.fbp(y)
    fct.test_eq(rec.shape, x.shape); fct.test_eq(rec.dtype, torch.float32)
    fct.test_close(rec[2:3, 1:2], ParallelBeamTomography(40, in_shape=(1, 20, 20)).fbp(y[2:3, 1:2]), eps=1e-5)
    fct.test_eq(op.fbp(y.double()).dtype, torch.float64)
    fct.test_fail(lambda: op.fbp(y, 'cosine'), contains="filter must be one of ['hann', 'ramp'], got 'cosine'")
    fct.test_fail(lambda: op.fbp(y[:, :1]), contains='y must have shape (B, 3, 40, 29)')
    H = fbp_filter(29); fct.test_eq(len(H), 64//2 + 1)
    assert 0 < H[0] < 5e-3 and 0.495 < H[-1] <= 0.5   # |f|: 0 at DC, 1/2 at Nyquist, to the cut of the kernel at 64 taps
    fct.test_close(fbp_filter(29, 'hann')[-1], 0., eps=1e-12)

def test_limited_angle_fbp_weights():
    lat = LimitedAngleTomography(30, 90., in_shape=(1, 33, 33))
    full = ParallelBeamTomography(60, in_shape=(1, 33, 33))
    x = _disk(33, 10.)[None, None]
    # the limited data, weighted by their own spacing, are the first half of the full-angle FBP sum
    half = full.backproject(torch.zeros(1, 1, 60, full.n_detectors, dtype=torch.float64))
    fct.test_eq(half.abs().max().item(), 0.)
    assert float(lat.fbp(lat(x)).mean()) > 0 and lat.fbp(lat(x)).shape == x.shape

# ---------------------------------------------------------------------------------------------------- extension contract
class _RowSums(LinearOperator):
    def __init__(self, in_shape=(1, 6, 5)):
        super().__init__(in_shape); self.out_shape = self.in_shape[:2]
    def _A(self, x): return x.sum(-1)
    def _At(self, y): return y[..., None].expand(-1, -1, -1, self.in_shape[2])

def test_contract_missing_pieces():
    class NoShape(LinearOperator):
        def _A(self, x): return x
        def _At(self, y): return y
    class NoForward(LinearOperator):
        out_shape = (1, 28, 28)
        def _At(self, y): return y
    class BadShape(NoShape):
        out_shape = (1, 0)
    with pytest.raises(TypeError) as e: NoShape()
    assert str(e.value) == ("NoShape must define out_shape, the shape of one measurement without the batch dimension (a tuple "
                            "attribute set in __init__, or a property); for images to images: out_shape = in_shape")
    with pytest.raises(TypeError) as e: NoForward()
    assert str(e.value) == ("NoForward must implement _A: a LinearOperator subclass defines _A(self, x) (the forward map on a "
                            "batch (B, *in_shape)), _At(self, y) (its adjoint on a batch (B, *out_shape)) and out_shape "
                            "(deepinv-style A(self, x) and A_adjoint(self, y) are accepted in their place)")
    fct.test_fail(lambda: LinearOperator(), contains='LinearOperator must implement _A and _At:')
    fct.test_fail(lambda: BadShape(), contains='BadShape.out_shape entries must be an integer in [1, inf], got 0')

def test_check_adjoint_catches_a_wrong_scale():
    class Twice(_RowSums):
        def _At(self, y): return 2*super()._At(y)
    err = Twice().adjointness_error()
    assert err > 0.05
    with pytest.raises(ValueError) as e: Twice().check_adjoint()
    assert str(e.value) == (f"Twice._At is not the adjoint of _A: the adjointness error |<Ax, y> - <x, A^T y>| / "
                            f"max(||Ax|| ||y||, ||x|| ||A^T y||) is {err:.3g} in float64, above tol=1e-05")
    assert _RowSums().check_adjoint() < 1e-15
    class Slightly(_RowSums):
        def _At(self, y): return (1 + 1e-4)*super()._At(y)
    fct.test_fail(lambda: Slightly().check_adjoint(), contains='above tol=1e-05')
    assert Slightly().check_adjoint(tol=1e-3) < 1e-3

@pytest.mark.parametrize('name', OPERATORS)
def test_check_adjoint_every_operator(name):
    assert make_operator(name).check_adjoint() < 1e-12

def test_deepinv_style_subclass_works():
    class Dv(LinearOperator):
        def __init__(self):
            super().__init__((2, 4, 4)); self.out_shape = (2, 16)
        def A(self, x, **kw): return x.flatten(2)
        def A_adjoint(self, y, **kw): return y.view(-1, 2, 4, 4)
    op = Dv()
    x = torch.rand(3, 2, 4, 4)
    fct.test_eq(op(x), x.flatten(2)); fct.test_eq(op._A(x), x.flatten(2))
    assert op.check_adjoint() == 0. and abs(op.norm() - 1) < 1e-6
    fct.test_eq((2 * op).A_adjoint(op(x)), 2*x)
    fct.test_eq(op.pseudo_inverse(op(x)), x)

def test_buffers_follow_the_input_and_the_operator_is_unchanged():
    op = GaussianBlur(5, 1.2, in_shape=(2, 9, 9))
    x64 = torch.rand(2, 2, 9, 9, dtype=torch.float64)
    assert op(x64).dtype == torch.float64 and op.rows.dtype == torch.float32
    v = op._like(x64); assert op._like(x64) is v and v is not op and v.rows.dtype == torch.float64   # one copy, kept
    fct.test_close(op(x64), op.double()(x64), eps=1e-12)   # .double() converts in place (nn.Module) ...
    assert op._like(x64) is op                            # ... and then float64 is its own dtype: no copy
    op.float(); op.rows.mul_(2)                           # a buffer changed in place: the kept copy is rebuilt
    fct.test_close(op(x64), op.float()(x64.float()).double(), eps=1e-5)
    comp = 2.0 * (RandomInpainting(0.5, in_shape=(2, 9, 9)) @ op)
    assert comp(x64).dtype == torch.float64 and comp.op.outer.mask.dtype == torch.float32

def test_custom_operator_errors_name_the_argument():
    op = _RowSums()
    fct.test_fail(lambda: op(torch.zeros(2, 1, 5, 6)), contains='x must have image shape (C, H, W) = (1, 6, 5), got (1, 5, 6)')
    fct.test_fail(lambda: op.A_adjoint(torch.zeros(2, 1, 5)), contains='y must have shape (B, 1, 6) for _RowSums(in_shape=(1, 6, 5)), got (2, 1, 5)')

# ------------------------------------------------------------------------------------------ adjoints at several sizes
@pytest.mark.parametrize('size', [16, 64])
@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('name', OPERATORS)
def test_adjointness_sizes_and_channels(name, size, channels):
    op = make_operator(name, in_shape=(channels, size, size))
    assert op.adjointness_error() < 1e-6
    assert op.adjointness_error(dtype=torch.float32) < 1e-4
    x = torch.rand(2, channels, size, size)
    fct.test_eq(op.A_adjoint(op(x)).shape, x.shape)

# ------------------------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize('keep', [0, 0.0, -0.1, 1.5, float('nan')])
def test_bad_keep(keep):
    fct.test_fail(lambda: RandomInpainting(keep), contains='keep must be a finite number in (0, 1]')

def test_bad_constructor_args():
    fct.test_fail(lambda: CompressedSensing(0), contains='m must be an integer in [1, 784], got 0')
    fct.test_fail(lambda: CompressedSensing(785), contains='m must be an integer in [1, 784], got 785')
    fct.test_fail(lambda: CompressedSensing(2.5), contains='m must be an integer')
    fct.test_fail(lambda: RandomInpainting(0.0001), contains='observes no pixel')
    fct.test_fail(lambda: Downsample(3), contains='factor must divide the image size (28, 28), got 3')
    fct.test_fail(lambda: GaussianBlur(4), contains='width must be odd, got 4')
    fct.test_fail(lambda: GaussianBlur(5, 0.), contains='sigma must be a finite number in (0, inf]')
    fct.test_fail(lambda: BlockInpainting((20, 20, 10, 10)), contains='must be non-empty and inside the 28x28 image')
    fct.test_fail(lambda: BlockInpainting((1, 2, 3)), contains='box must be (top, left, height, width)')
    fct.test_fail(lambda: ParallelBeamTomography(0), contains='n_angles must be an integer in [1, inf], got 0')
    fct.test_fail(lambda: ParallelBeamTomography(angles=[]), contains='angles must be a non-empty list')
    fct.test_fail(lambda: LimitedAngleTomography(max_angle_deg=0.), contains='max_angle_deg must be a finite number in (0.0, 180.0]')
    fct.test_fail(lambda: Identity(in_shape=(28, 28)), contains='in_shape must be a tuple (C, H, W)')
    fct.test_fail(lambda: Inpainting(torch.full((28, 28), 0.5)), contains='mask must hold only 0 and 1')
    fct.test_fail(lambda: make_operator('deblur'), contains="name must be one of ['block', 'blur', 'cs', 'denoise', 'downsample', 'inpaint', 'limited_tomo', 'tomo'], got 'deblur'")
    fct.test_fail(lambda: CompressedSensing(100).dense_matrix(max_pixels=100), contains='dense_matrix is for small images')

@pytest.mark.parametrize('name', OPERATORS)
def test_bad_inputs(name):
    op = make_operator(name)
    fct.test_fail(lambda: op(torch.zeros(28, 28)), contains='x must be a 4-D tensor (B, C, H, W), got shape (28, 28)')
    fct.test_fail(lambda: op(torch.zeros(1, 28, 28)), contains='x must be a 4-D tensor')
    fct.test_fail(lambda: op(torch.zeros(2, 1, 32, 32)), contains='x must have image shape (C, H, W) = (1, 28, 28), got (1, 32, 32)')
    fct.test_fail(lambda: op(torch.zeros(2, 3, 28, 28)), contains='x must have image shape (C, H, W) = (1, 28, 28), got (3, 28, 28)')
    fct.test_fail(lambda: op(torch.zeros(2, 1, 28, 28, dtype=torch.long)), contains='floating-point')
    fct.test_fail(lambda: op(np.zeros((2, 1, 28, 28))), contains='x must be a torch.Tensor')
    x = torch.rand(2, 1, 28, 28)
    fct.test_fail(lambda: op.measure(x, -0.1), contains='noise_std must be a finite number in [0, inf], got -0.1')
    fct.test_fail(lambda: op.measure(x, 0.1, noise='laplace'), contains="noise must be one of ['gaussian', 'poisson']")
    bad_y = torch.zeros((2,) + tuple(s + 1 for s in op.out_shape))
    fct.test_fail(lambda: op.A_adjoint(bad_y), contains='y must have shape (B, ' + ', '.join(map(str, op.out_shape)) + f') for {op!r}')
    fct.test_fail(lambda: op.A_adjoint(bad_y[0]), contains='y must have shape')
    fct.test_fail(lambda: op.pseudo_inverse(bad_y), contains='y must have shape')

def test_poisson_needs_nonnegative():
    fct.test_fail(lambda: CompressedSensing(50).measure(torch.rand(2, 1, 28, 28), noise='poisson'), contains="noise='poisson' needs A x >= 0")

# ------------------------------------------------------------------------------------------------------------------ noise
def test_measure_seeded_and_statistics():
    op = make_operator('cs', m=200)
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y1, y2, y3 = op.measure(x, 0.1, seed=3), op.measure(x, 0.1, seed=3), op.measure(x, 0.1, seed=4)
    fct.test_eq(y1, y2); assert not torch.equal(y1, y3)
    e = y1 - op(x)
    fct.test_close(e.std().item(), 0.1, eps=0.003)   # 12,800 samples: std of the estimate ~0.0006
    fct.test_close(e.mean().item(), 0., eps=0.003)
    fct.test_eq(op.measure(x, 0.), op(x))
    assert op.measure(x, 0.1, seed=None).shape == y1.shape

def test_poisson_statistics():
    op, x = Identity(), torch.full((20, 1, 28, 28), 0.4)
    y = op.measure(x, noise='poisson', poisson_scale=25., seed=0)
    fct.test_eq(y, op.measure(x, noise='poisson', poisson_scale=25., seed=0))
    fct.test_close(y.mean().item(), 0.4, eps=0.005); fct.test_close(y.var().item(), 0.4/25, eps=0.0005)
    fct.test_close(((y*25) - (y*25).round()).abs().max().item(), 0., eps=1e-4)   # integer counts / scale
    y2 = op.measure(x, 0.05, noise='poisson', poisson_scale=25., seed=0)          # Poisson-Gaussian
    fct.test_close(y2.var().item(), 0.4/25 + 0.05**2, eps=0.0007)

# ---------------------------------------------------------------------------------------------------- dtype, device, grads
@pytest.mark.parametrize('name', OPERATORS)
def test_dtype_follows_input(name):
    op = make_operator(name)
    for dt in (torch.float64, torch.float32):
        x = torch.rand(2, 1, 28, 28, dtype=dt)
        fct.test_eq(op(x).dtype, dt); fct.test_eq(op.A_adjoint(op(x)).dtype, dt); fct.test_eq(op.measure(x, 0.1).dtype, dt)
    xd = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    fct.test_close(op(xd), op(xd.float()).double(), eps=1e-4*max(1., op(xd).abs().max().item()))
    op64 = make_operator(name).double()
    fct.test_close(op64(xd), op(xd), eps=1e-12*max(1., op(xd).abs().max().item()))

@pytest.mark.parametrize('name', OPERATORS)
def test_gradient_is_adjoint(name):
    op = make_operator(name)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    v = torch.randn((2,) + op.out_shape, dtype=torch.float64)
    (op(x)*v).sum().backward()
    fct.test_close(x.grad, op.A_adjoint(v), eps=1e-10)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_cuda_matches_cpu():
    for name in OPERATORS:
        op = make_operator(name); x = torch.rand(4, 1, 28, 28)
        opc = make_operator(name).to('cuda')
        fct.test_close(opc(x.cuda()).cpu(), op(x), eps=1e-3)
        fct.test_eq(opc.measure(x.cuda(), 0.1, seed=1).cpu().sub(opc(x.cuda()).cpu()).round(decimals=3),
                    op.measure(x, 0.1, seed=1).sub(op(x)).round(decimals=3))

# --------------------------------------------------------------------------------------------------------- pseudo-inverse
def test_pseudo_inverse():
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    cs = CompressedSensing(100)
    y = cs(x)
    fct.test_close(cs(cs.A_dagger(y, n_iter=200)), y, eps=1e-5)   # consistent system: A A^+ y = y
    inp = RandomInpainting(0.3)
    fct.test_close(inp.pseudo_inverse(inp(x)), inp(x), eps=1e-12)
    fct.test_close(Identity().A_dagger(x), x, eps=1e-12)
    d = Downsample(2)
    fct.test_close(d(d.A_dagger(d(x))), d(x), eps=1e-8)

# ------------------------------------------------------------------------------------------------------- property tests
@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 10), w=st.integers(3, 10), c=st.integers(1, 2), width=st.sampled_from([1, 3, 5, 7]),
       sigma=st.floats(0.3, 3.), keep=st.floats(0.05, 1.), n_ang=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_adjointness_property(h, w, c, width, sigma, keep, n_ang, seed):
    shp = (c, h, w)
    ops = [GaussianBlur(width, sigma, in_shape=shp), ParallelBeamTomography(n_ang, in_shape=shp),
           CompressedSensing(max(1, h*w//3), seed=seed, in_shape=shp)]
    if round(keep*h*w) >= 1: ops.append(RandomInpainting(keep, seed=seed, in_shape=shp))
    for op in ops: assert op.adjointness_error(seed=seed) < 1e-6, op

def test_copies_and_pickles():
    "Operators with sparse buffers deep-copy (torch cannot deep-copy a sparse CSR tensor itself) and pickle."
    import copy, pickle
    op = 2.0 * make_operator('tomo', method='sparse')
    x = torch.rand(2, 1, 28, 28)
    op(x.double())                                     # leaves a converted float64 copy behind
    for c in (copy.deepcopy(op), pickle.loads(pickle.dumps(op))):
        fct.test_eq(c(x), op(x)); assert c.op is not op.op and c.op.matrix.layout == torch.sparse_csr

@pytest.mark.parametrize('m,shape', [(150, (1, 28, 28)), (70, (3, 8, 8)), (33, (1, 10, 14)), (5, (1, 3, 3))])
def test_cs_matrix_drawn_in_blocks_is_the_one_call_matrix(m, shape):
    "CompressedSensing draws its matrix in blocks of rows (less memory); the entries are those of one randn call."
    ref = torch.randn(m, math.prod(shape), generator=torch.Generator().manual_seed(4), dtype=torch.float64) / math.sqrt(m)
    fct.test_eq(CompressedSensing(m, seed=4, in_shape=shape).matrix, ref.float())

def test_sparse_projection_in_blocks_of_images():
    "Past 2^19 input values the sparse projector multiplies 16 images at a time; the result is the dense one."
    sp, de = (ParallelBeamTomography(12, in_shape=(3, 64, 64), method=m) for m in ('sparse', 'dense'))
    x = torch.rand(50, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert x.numel() > 2**19
    fct.test_close(sp(x), de(x), eps=1e-5*float(de(x).abs().max()))
