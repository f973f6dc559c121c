"Tests of genprior_nb.latent_space: interpolation, smoothness, and the widgets' callbacks (no browser needed)."
import math
import numpy as np
import pytest
import torch
import fastcore.test as fct

from genprior_nb.wgan import WGANGenerator
from genprior_nb.latent_opt import METHODS
from genprior_nb.generators import LinearGenerator
from genprior_nb.operators import OPERATORS
from genprior_nb.latent_space import (interpolate, smoothness, latent_codes, interpolation_grid, to_png,
                                      interpolation_widget, latent_explorer, inverse_problem_explorer, explorer_operator, LEVELS)

torch.set_num_threads(1)

@pytest.fixture(scope='module')
def wgan():
    torch.manual_seed(1)
    return WGANGenerator(8, width=16).eval().requires_grad_(False)

def _pair(seed=0, k=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, generator=g), torch.randn(k, generator=g)

@pytest.mark.parametrize('mode', ['linear', 'slerp'])
def test_endpoints(mode):
    a, b = _pair()
    p = interpolate(a, b, 9, mode)
    fct.test_eq(p.shape, (9, 8))
    fct.test_close(p[0], a, eps=1e-5); fct.test_close(p[-1], b, eps=1e-5)
    pb = interpolate(torch.stack([a, b]), torch.stack([b, a]), 9, mode)
    fct.test_eq(pb.shape, (2, 9, 8)); fct.test_close(pb[1, 0], b, eps=1e-5)

def test_slerp_norms_and_angles():
    a, b = _pair(1)
    s = interpolate(a, b, 11, 'slerp')
    fct.test_close(s.norm(dim=1), a.norm() + torch.linspace(0, 1, 11) * (b.norm() - a.norm()), eps=1e-4)
    b1 = b / b.norm() * a.norm()
    s1 = interpolate(a, b1, 11, 'slerp')
    fct.test_close(s1.norm(dim=1), a.norm().expand(11), eps=1e-4)
    cos = ((s1 @ a) / (s1.norm(dim=1) * a.norm())).clamp(-1, 1)
    om = torch.acos(((a @ b1) / (a.norm() * b1.norm())).clamp(-1, 1))
    fct.test_close(torch.acos(cos)[1:], torch.linspace(0, 1, 11)[1:] * om, eps=2e-3)
    # linear interpolation halves the norm of orthogonal equal-norm codes' midpoint by sqrt(2); slerp does not
    e0, e1 = torch.eye(8)[0] * 3, torch.eye(8)[1] * 3
    fct.test_close(interpolate(e0, e1, 3)[1].norm(), 3 / math.sqrt(2), eps=1e-5)
    fct.test_close(interpolate(e0, e1, 3, 'slerp')[1].norm(), 3., eps=1e-5)

def test_interpolate_checks():
    a, b = _pair()
    with pytest.raises(ValueError, match="mode must be one of"): interpolate(a, b, 5, 'cubic')
    with pytest.raises(ValueError, match='n must be an integer'): interpolate(a, b, 1)
    with pytest.raises(ValueError, match='same shape'): interpolate(a, b[:3])

def test_smoothness_of_a_linear_generator_is_analytic():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(64, 4, generator=g)
    G = LinearGenerator(W, (1, 8, 8))
    z0, z1 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    s = smoothness(G, z0, z1, n=40)
    one = torch.ones(6, dtype=torch.float64)
    fct.test_close(s.max_over_mean, one, eps=1e-4); fct.test_close(s.detour, one, eps=1e-4)
    fct.test_close(s.max_over_length, one / 39, eps=1e-6)
    fct.test_close(s.length, ((z1 - z0) @ W.T).norm(dim=1).double(), eps=1e-3)
    # slerp through an isometry between equal-norm codes: an arc with equal chords
    Q = torch.linalg.qr(torch.randn(64, 4, generator=g, dtype=torch.float64))[0].float()
    a, b = torch.eye(4)[0] * 2, (torch.eye(4)[0] + torch.eye(4)[1]) / math.sqrt(2) * 2  # angle pi/4, radius 2
    s2 = smoothness(LinearGenerator(Q, (1, 8, 8)), a, b, n=21, mode='slerp')
    om, n = math.pi / 4, 21
    fct.test_close(float(s2.max_over_mean[0]), 1., eps=1e-4)
    fct.test_close(float(s2.length[0]), (n - 1) * 2 * 2 * math.sin(om / (2 * (n - 1))), eps=1e-4)
    fct.test_close(float(s2.detour[0]), (n - 1) * math.sin(om / (2 * (n - 1))) / math.sin(om / 2), eps=1e-4)
    assert set(s.summary()) >= {'max_over_mean', 'detour', 'max_over_length'}

def test_codes_and_grid(vae, wgan):
    x = vae(torch.randn(2, 8, generator=torch.Generator().manual_seed(3)))
    fct.test_eq(latent_codes(vae, x).shape, (2, 8))
    zw = latent_codes(wgan, x, restarts=2, steps=20)
    fct.test_eq(zw.shape, (2, 8))
    with pytest.raises(ValueError, match='needs a generator with an encoder'): latent_codes(wgan, x, use_encoder=True)
    fct.test_eq(interpolation_grid(vae, zw[:1], zw[1:], n=5, mode='slerp').shape, (1, 5, 1, 28, 28))

def test_png():
    p = to_png(np.zeros((4, 4)), zoom=2)
    assert p[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match=r'img must be a grey \(H, W\) or RGB .* got shape \(2, 3, 4\)'): to_png(np.zeros((2, 3, 4)))
    fct.test_eq(to_png(np.zeros((3, 4, 4)), zoom=1)[:8], p[:8])   # RGB, channels first

def test_interpolation_widget_callbacks(vae):
    x = vae(torch.randn(2, 8, generator=torch.Generator().manual_seed(4)))
    wx = interpolation_widget(vae, x[0], x[1])  # codes from the encoder
    fct.test_close(wx.z0, vae.encode(x[:1])[0])
    w = interpolation_widget(vae, z0=torch.full((8,), -3.), z1=torch.full((8,), 3.))
    png, img = w.png, w.image.copy()
    w.t.value = 0.9
    assert w.png != png and np.abs(w.image - img).max() > 0
    w.mode.value = 'slerp'
    w.t.value = 1.0
    fct.test_close(w.image, vae(w.z1[None])[0, 0].numpy(), eps=1e-6)
    assert len(w.response_times) == 3 and max(w.response_times) < 1, w.response_times
    w2 = interpolation_widget(vae)  # two prior draws
    assert w2.image.shape == (28, 28)

def test_latent_explorer_callbacks(vae):
    w = latent_explorer(vae, z=torch.zeros(8))
    img = w.image.copy()
    w.sliders[0].value = -2.0
    assert np.abs(w.image - img).max() > 1e-5
    fct.test_close(w.image, vae(w.z[None])[0, 0].numpy(), eps=1e-6)
    n = len(w.response_times); w.sample_button.click()
    assert len(w.response_times) == n + 1          # one update for eight sliders
    w.zero_button.click(); fct.test_eq(w.z, torch.zeros(8))
    assert 'prior quantile' in w.info.value
    with pytest.raises(ValueError, match='z must have 8 entries'): latent_explorer(vae, z=torch.zeros(3))

def test_inverse_problem_explorer_callbacks(vae, wgan):
    imgs = vae(torch.randn(3, 8, generator=torch.Generator().manual_seed(5)))
    w = inverse_problem_explorer({'vae': vae, 'wgan': wgan}, imgs, operator='inpaint')
    assert np.isfinite(w.psnr)
    for name in OPERATORS:
        before = w.png
        w.operator.value = name
        label, opts, default = LEVELS[name]
        assert w.level.value == default and w.level.description == label
        assert np.isfinite(w.psnr), name
        assert w.png != before or name == 'inpaint', name
    w.operator.value = 'cs'
    before = w.png
    w.level.value = 500
    assert w.png != before and np.isfinite(w.psnr)
    for m in METHODS:
        w.method.value = m; assert np.isfinite(w.psnr), m
    w.generator.value = 'wgan'; w.noise.value = 0.2; w.image_index.value = 2
    fct.test_close(w.truth_image, imgs[2, 0].numpy())
    assert np.isfinite(w.psnr) and w.image.shape == (28, 28)
    with pytest.raises(ValueError, match='generators must be a non-empty dict'): inverse_problem_explorer({}, imgs)
    with pytest.raises(ValueError, match='operator must be one of'): inverse_problem_explorer({'v': vae}, imgs, operator='xray')

@pytest.mark.parametrize('name', OPERATORS)
def test_explorer_operators_have_norm_one(name):
    for level in LEVELS[name][1][:2]:
        op = explorer_operator(name, level)
        fct.test_close(float(torch.linalg.matrix_norm(op.dense_matrix(), 2)), 1., eps=1e-5)
