"Tests of genprior_nb.operators: adjoints, norms, seeds, references (scipy, skimage, analytic disk), input checks, noise."
import math
import numpy as np
import pytest
import torch
import fastcore.test as fct
import scipy.ndimage as ndi
from hypothesis import given, settings, strategies as st
from skimage.transform import radon

from genprior_nb.operators import (LinearOperator, Identity, Inpainting, RandomInpainting, BlockInpainting, CompressedSensing,
                                   GaussianBlur, Downsample, ParallelBeamTomography, LimitedAngleTomography, ScaledOperator,
                                   ComposedOperator, OPERATORS, make_operator, gaussian_kernel, radon_matrix)

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
    'tomo_sparse': lambda: ParallelBeamTomography(10, in_shape=SMALL, sparse=True),
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
    assert abs(op.norm() - smax) <= 0.01*smax
    assert op.norm() <= smax*(1 + 1e-9)  # the Rayleigh quotient is a lower bound

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
    fct.test_close(Identity().norm(), 1., eps=1e-9)
    fct.test_close(RandomInpainting(0.1).norm(), 1., eps=1e-9)
    fct.test_close(Downsample(7).norm(), 1/7, eps=1e-9)
    fct.test_close(make_operator('blur', normalize=True).norm(recompute=True), 1., eps=1e-6)

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
    fct.test_eq(ParallelBeamTomography(10).matrix, ParallelBeamTomography(10).matrix)

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
def _disk(n, r, sub=16):
    c = (torch.arange(n*sub, dtype=torch.float64) + 0.5)/sub - n/2
    return (c[:, None]**2 + c[None, :]**2 <= r**2).double().view(n, sub, n, sub).mean((1, 3))

def _rel(a, b): return np.linalg.norm(a - b) / np.linalg.norm(b)

def _ours_vs_skimage(img, theta):
    ref = radon(img.numpy(), theta, circle=False).T; N = ref.shape[1]
    op = ParallelBeamTomography(angles=theta, n_detectors=2*(N//2) + 1, in_shape=(1,) + tuple(img.shape))
    return op(img[None, None])[0, 0, :, :N].numpy(), ref

def test_tomography_vs_analytic_disk():
    n, r = 129, 48.
    theta = np.arange(12)*15.
    ours, ref = _ours_vs_skimage(_disk(n, r), theta)
    s = np.arange(ours.shape[1]) - ours.shape[1]//2
    exact = np.broadcast_to(2*np.sqrt(np.clip(r**2 - s**2, 0, None)), ours.shape)
    assert _rel(ours, exact) < 0.02            # all detector bins
    inner = np.abs(s) <= r - 2
    assert _rel(ours[:, inner], exact[:, inner]) < 0.005
    assert _rel(ours, ref) < 0.02

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
    assert s.is_sparse; fct.test_close(s.to_dense(), d, eps=1e-14)
    a, b = ParallelBeamTomography(9, in_shape=SMALL, sparse=True), ParallelBeamTomography(9, in_shape=SMALL, sparse=False)
    x = torch.rand(3, 1, 12, 12)
    fct.test_close(a(x), b(x), eps=1e-5); fct.test_close(a.A_adjoint(b(x)), b.A_adjoint(b(x)), eps=1e-4)

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
