"""genprior_nb.interop against the real deepinv (run in .venv-interop by `bash run.sh interop-test`; no stubs).

Collected only with --interop (see tests/conftest.py): the main venv has no deepinv.
"""
import warnings
import pytest
import torch
from torch import nn
import deepinv as dinv
from genprior_nb.interop import (from_deepinv, to_deepinv, DeepinvGenerator, GenerativeReconstructor,
                                 RangeProjectionPrior, GenpriorPhysics)
from genprior_nb.operators import OPERATORS, make_operator, gaussian_kernel
from genprior_nb.latent_opt import reconstruct, pgd_gan
from genprior_nb.metrics import psnr
from genprior_nb.pretrained import load_pretrained
from genprior_nb.data import eval_images
from genprior_nb.baselines import discrepancy_lambda

warnings.filterwarnings('ignore', message='.*normalize.*')  # deepinv's Tomography warns when `normalize` is left unset

@pytest.fixture(scope='module')
def G():
    "The shipped shapes VAE (needs no data files)."
    return load_pretrained('vae-shapes-8')

@pytest.fixture(scope='module')
def x():
    return eval_images(8, dataset='shapes')[0]

def _rng(seed): return torch.Generator().manual_seed(seed)
def _kernel(): return gaussian_kernel(9, 1.0)[None, None].float()   # a (1, 1, 9, 9) blur filter

# --- genprior_nb operators through to_deepinv ---------------------------------------------------------------------

@pytest.mark.parametrize('in_shape', [(1, 28, 28), (3, 32, 24)])
@pytest.mark.parametrize('name', OPERATORS)
def test_to_deepinv_passes_deepinvs_adjointness_test(name, in_shape):
    op = make_operator(name, in_shape=in_shape)
    physics = to_deepinv(op)
    assert isinstance(physics, dinv.physics.LinearPhysics) and isinstance(physics, GenpriorPhysics)
    assert physics.adjointness_test(torch.randn((1,) + in_shape, dtype=torch.float64), num_samples=3) < 1e-10
    assert physics.adjointness_test(torch.randn((1,) + in_shape), num_samples=3) < 1e-5   # deepinv's float32 criterion
    u = torch.rand((2,) + in_shape)
    assert torch.equal(physics.A(u), op.A(u)) and torch.equal(physics.A_adjoint(op.A(u)), op.A_adjoint(op.A(u)))

def test_to_deepinv_noise_is_deepinvs_gaussian_noise(x):
    op = make_operator('inpaint', 0.5)
    physics = to_deepinv(op, noise_std=0.1, seed=3)
    assert isinstance(physics.noise_model, dinv.physics.GaussianNoise)
    e = physics(x) - op.A(x)
    assert abs(e.std().item() - 0.1) < 0.005
    assert torch.equal(to_deepinv(op, 0.1, seed=3)(x), to_deepinv(op, 0.1, seed=3)(x))   # seeded
    assert from_deepinv(physics).noise_std == pytest.approx(0.1)
    # deepinv's generic algorithms accept it: its least-squares A_dagger solves the denoising problem exactly
    den = to_deepinv(make_operator('denoise'))
    torch.testing.assert_close(den.A_dagger(x), x, atol=1e-5, rtol=0)

# --- deepinv physics through from_deepinv -------------------------------------------------------------------------

def _physics():
    g = _rng(0)
    return {
        'inpainting': (dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.1, noise_model=dinv.physics.GaussianNoise(0.05), rng=g), None, (1, 28, 28), 0.05),
        'inpainting_rgb': (dinv.physics.Inpainting(img_size=(3, 20, 36), mask=0.5, rng=g), None, (3, 20, 36), 0.0),
        'blur': (dinv.physics.Blur(_kernel(), padding='valid', noise_model=dinv.physics.GaussianNoise(0.02)),
                 (1, 28, 28), (1, 20, 20), 0.02),
        'blur_circular': (dinv.physics.Blur(_kernel(), padding='circular'), (1, 32, 24), (1, 32, 24), 0.0),
        'tomography': (dinv.physics.Tomography(angles=10, img_width=28, normalize=True, noise_model=dinv.physics.GaussianNoise(0.1)), None, (1, 40, 10), 0.1),
        'compressed_sensing': (dinv.physics.CompressedSensing(m=50, img_size=(1, 28, 28), rng=g), None, (50,), 0.0),
    }

@pytest.mark.parametrize('name', list(_physics()))
def test_from_deepinv_shapes_adjoint_noise(name):
    physics, in_shape, out_shape, sigma = _physics()[name]
    op = from_deepinv(physics, in_shape)
    want_in = in_shape or {'inpainting': (1, 28, 28), 'inpainting_rgb': (3, 20, 36), 'tomography': (1, 28, 28), 'compressed_sensing': (1, 28, 28)}[name]
    assert op.in_shape == want_in and op.out_shape == out_shape
    assert op.adjointness_error() < 1e-6
    assert op.noise_std == pytest.approx(sigma)
    u = torch.rand((3,) + want_in)
    assert torch.equal(op.A(u), physics.A(u)) and torch.equal(op.A_adjoint(op.A(u)), physics.A_adjoint(physics.A(u)))
    back = to_deepinv(op)   # and back again
    assert torch.equal(back.A(u), physics.A(u))

def test_from_deepinv_noise_level_feeds_the_discrepancy_principle(x):
    physics = dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.5, noise_model=dinv.physics.GaussianNoise(0.05, rng=_rng(1)), rng=_rng(0))
    op = from_deepinv(physics)
    y = physics(x)
    lams, xr = discrepancy_lambda(y, op, 'tikhonov', noise_std=op.noise_std)
    assert lams.shape == (len(x),) and xr.shape == x.shape
    bound = op.noise_std**2 * op.out_shape[0] * 28 * 28
    assert ((op.A(xr) - y).pow(2).flatten(1).sum(1) <= bound * 1.05).float().mean() >= 0.5   # clipping can add a little misfit
    assert from_deepinv(dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5, noise_model=dinv.physics.PoissonNoise(1.0))).noise_std is None

# --- bad input ------------------------------------------------------------------------------------------------------

def test_bad_inputs_give_clear_errors(G):
    with pytest.raises(TypeError, match='physics must be a deepinv LinearPhysics.*non-linear deepinv Physics'):
        from_deepinv(dinv.physics.Physics(A=lambda x, **kw: x**2))
    with pytest.raises(TypeError, match='physics must be a deepinv LinearPhysics.*RandomInpainting'):
        from_deepinv(make_operator('inpaint'))
    with pytest.raises(ValueError, match=r'cannot infer the image size of Blur: .*pass in_shape=\(C, H, W\)'):
        from_deepinv(dinv.physics.Blur(_kernel()))
    with pytest.raises(ValueError, match=r'cannot infer the image size of LinearPhysics'):
        from_deepinv(dinv.physics.LinearPhysics(A=lambda x, **kw: 2*x, A_adjoint=lambda y, **kw: 2*y))
    with pytest.raises(ValueError, match=r'LinearPhysics.A_adjoint is not the adjoint of A on images of shape \(1, 8, 8\): relative error'):
        from_deepinv(dinv.physics.LinearPhysics(A=lambda x, **kw: 2*x, A_adjoint=lambda y, **kw: y, img_size=(1, 8, 8)))
    unchecked = from_deepinv(dinv.physics.LinearPhysics(A=lambda x, **kw: 2*x, A_adjoint=lambda y, **kw: y, img_size=(1, 8, 8)), check_adjoint=False)
    assert unchecked.adjointness_error() > 0.1   # wrapped as asked; the check is what refuses it
    with pytest.raises(ValueError, match=r'CompressedSensing.A fails on images of shape \(1, 8, 8\)'):
        from_deepinv(dinv.physics.CompressedSensing(m=5, img_size=(1, 28, 28)), in_shape=(1, 8, 8))
    for make in (GenerativeReconstructor, DeepinvGenerator, RangeProjectionPrior):
        with pytest.raises(TypeError, match=r'G \(Linear\) has no latent_dim attribute'): make(nn.Linear(3, 4))
    with pytest.raises(TypeError, match=r"csgm has no setting 'step'; it takes \['restarts', 'steps'"):
        GenerativeReconstructor(G, 'csgm', step=3)
    with pytest.raises(ValueError, match="method must be one of"):
        GenerativeReconstructor(G, 'dps')
    with pytest.raises(TypeError, match='op must be a genprior_nb LinearOperator, got Inpainting'):
        to_deepinv(dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5))
    with pytest.raises(ValueError, match='noise_std'): to_deepinv(make_operator('denoise'), noise_std=-1.0)
    with pytest.raises(TypeError, match=r"GenpriorPhysics.A has no per-call physics parameters; got \['mask'\]"):
        to_deepinv(make_operator('denoise')).A(torch.zeros(1, 1, 28, 28), mask=1)

# --- generators, reconstructors, priors -----------------------------------------------------------------------------

def test_generator_backbone_in_deepinvs_csgm(G, x):
    physics = dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.5, rng=_rng(0))
    G.train(); before = [p.clone() for p in G.parameters()]
    model = dinv.models.CSGMGenerator(DeepinvGenerator(G), inf_max_iter=30).eval()
    torch.manual_seed(0)
    out = model(physics.A(x[:1]), physics)
    assert out.shape == (1, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert G.training and all(p.grad is None for p in G.parameters())                        # the caller's G untouched
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))
    G.eval()

class _Pairs(torch.utils.data.Dataset):
    "Fixed (x, y) pairs in deepinv's dict format."
    def __init__(self, x, y): self.x, self.y = x, y
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return {'x': self.x[i], 'y': self.y[i]}

class _Recorder(dinv.loss.metric.Metric):
    "A deepinv metric that keeps every reconstruction it sees."
    def __init__(self): super().__init__(); self.seen = []
    def metric(self, x_net, x, *args, **kwargs):
        self.seen.append(x_net.detach().clone()); return torch.zeros(len(x_net))

def test_reconstructor_in_deepinvs_loop_is_reconstruct_bit_for_bit(G, x):
    physics = dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.25, noise_model=dinv.physics.GaussianNoise(0.05, rng=_rng(1)), rng=_rng(0))
    y = physics(x)
    settings = dict(restarts=3, steps=40, seed=5)
    model = GenerativeReconstructor(G, 'csgm', **settings)
    rec = _Recorder()
    G.train()
    loader = torch.utils.data.DataLoader(_Pairs(x, y), batch_size=4, shuffle=False)
    dinv.test(model, loader, physics, metrics=[rec], device='cpu', verbose=False, show_progress_bar=False,
              compare_no_learning=False)
    assert G.training   # deepinv's model.eval() did not reach the caller's generator
    G.eval()
    assert len(rec.seen) == 2
    op = from_deepinv(physics)
    for b, got in zip(range(0, len(x), 4), rec.seen):
        want = reconstruct(y[b:b + 4], op, G, 'csgm', **settings).x
        assert torch.equal(got, want)
    assert model.last_result.x.shape == (4, 1, 28, 28) and model.last_result.misfit.shape == (4, 3)

def test_reconstructor_takes_the_image_shape_from_G_when_the_physics_has_none(G, x):
    physics = dinv.physics.Blur(_kernel(), padding='circular')
    y = physics.A(x[:2])
    out = GenerativeReconstructor(G, 'csgm', restarts=2, steps=20)(y, physics)
    assert out.shape == (2, 1, 28, 28)
    assert torch.equal(out, reconstruct(y, from_deepinv(physics, (1, 28, 28)), G, 'csgm', restarts=2, steps=20).x)

def test_pgd_gan_through_deepinvs_pgd_matches_pgd_gan(G, x):
    "deepinv's PGD with the range-projection prior iterates PGD-GAN (explicit settings: independent of pgd_gan's defaults)."
    op = make_operator('inpaint', 0.25)
    y = op.measure(x, 0.05, seed=2)
    outer, inner, eta, lr, seed = 20, 5, 1.0, 0.05, 0
    ref = pgd_gan(y, op, G, restarts=1, outer=outer, inner=inner, eta=eta, lr=lr, seed=seed, tol=0.0)
    prior = RangeProjectionPrior(G, inner=inner, lr=lr, rounds=outer, seed=seed)
    model = dinv.optim.PGD(prior=prior, data_fidelity=dinv.optim.L2(), stepsize=eta / op.norm()**2, max_iter=outer,
                           early_stop=False, custom_init=prior.init)
    out = model(y, to_deepinv(op))
    p_ref, p_out = psnr(ref.x, x).mean().item(), psnr(out.clamp(0, 1), x).mean().item()
    assert abs(p_ref - p_out) < 0.1, (p_ref, p_out)
    assert p_out > psnr(prior.init(y), x).mean().item() + 1   # and it did something: far better than its start
    # a different schedule is a different iteration: the match is not a coincidence of two converged runs
    other = RangeProjectionPrior(G, inner=inner, lr=lr, rounds=4*outer, seed=seed)
    out2 = dinv.optim.PGD(prior=other, data_fidelity=dinv.optim.L2(), stepsize=eta / op.norm()**2, max_iter=outer,
                          early_stop=False, custom_init=other.init)(y, to_deepinv(op))
    assert (out2 - ref.x).abs().max() > 10 * (out - ref.x).abs().max()
