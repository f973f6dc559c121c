"DESYRE: Haar filters, tight-frame U-Net shapes, FISTA (descent, sparse recovery, discrepancy), training/resume, the shipped card."
import math
import pytest
import torch
from torch import nn
import fastcore.test as fct
from genprior_nb.operators import make_operator
from genprior_nb.metrics import psnr
from genprior_nb.baselines import classical_start
from genprior_nb.desyre import (haar_analysis, haar_synthesis, TightFrameUNet, train_desyre, desyre,
                                desyre_settings, load_desyre, desyre_card, list_desyre)

class IdentityDecoder(nn.Module):
    "D(xi) = xi as an image: DESYRE becomes the Lasso (weights 1), whose sparse solutions are known."
    def __init__(self, shape):
        super().__init__(); self.image_shape, self.latent_dim = shape, math.prod(shape)
    def forward(self, xi): return xi.view((len(xi),) + self.image_shape)

def sparse_codes(n, k, s, seed=0):
    g = torch.Generator().manual_seed(seed); xi = torch.zeros(n, k)
    for i in range(n): xi[i, torch.randperm(k, generator=g)[:s]] = torch.randn(s, generator=g).sign() * (1 + torch.rand(s, generator=g))
    return xi

def small_net(shape=(1, 16, 16), levels=2, seed=0):
    torch.manual_seed(seed)
    return TightFrameUNet(shape, levels, width=4).eval()

def test_haar_perfect_reconstruction():
    x = torch.randn(2, 3, 6, 10, dtype=torch.float64)
    b = haar_analysis(x)
    fct.test_eq(b.shape, (2, 3, 4, 3, 5))
    assert (haar_synthesis(b) - x).abs().max() < 1e-12                    # orthogonal: the transposed filters invert it
    assert abs(b.pow(2).sum() - x.pow(2).sum()) < 1e-9
    with pytest.raises(ValueError, match='even height and width, got 5x4'): haar_analysis(torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match=r'shape \(B, C, 3, h, w\)'): haar_synthesis(b, which=(1, 2, 3))

def test_shapes_and_coefficient_counts():
    net = TightFrameUNet((1, 28, 28), levels=2, width=4)
    x = torch.rand(2, 1, 28, 28)
    xi = net.encode(x)
    fct.test_eq(xi.shape, (2, 2156)); fct.test_eq(net(xi).shape, (2, 1, 28, 28))
    fct.test_eq(net.latent_dim / 784, 2.75)                                  # 28x28 allows 2 levels: (3 - 2^-2) x pixels
    fct.test_eq(TightFrameUNet((1, 512, 512), levels=4, width=1).latent_dim / 512**2, 2.9375)   # the paper's 4 levels
    fct.test_eq(TightFrameUNet((1, 256, 256), levels=4, width=1).latent_dim / 256**2, 2.9375)   # any size, same ratio
    colour = TightFrameUNet((3, 32, 48), levels=3, width=2)
    fct.test_eq(colour(colour.encode(torch.rand(1, 3, 32, 48))).shape, (1, 3, 32, 48))
    fct.test_eq([tuple(p.shape[1:]) for p in net.split(xi)], [(2, 3, 14, 14), (4, 3, 7, 7), (8, 7, 7)])
    w = net.coef_weights
    fct.test_eq(w[:1176].unique().tolist(), [1.0]); fct.test_eq(w[1176:].unique().tolist(), [0.5])   # level 1; level 2 and low-pass
    fct.test_eq(TightFrameUNet((1, 64, 64), levels=4, width=1).coef_weights.unique().tolist(), [0.125, 0.25, 0.5, 1.0])
    with pytest.raises(ValueError, match=r'does not allow levels=3: height and width must be divisible by 2\^levels = 8'):
        TightFrameUNet((1, 28, 28), levels=3)
    with pytest.raises(ValueError, match=r'xi must have shape \(B, latent_dim\) = \(B, 2156\), got \(2, 5\)'): net(torch.zeros(2, 5))

def test_fista_step_decreases_objective():
    net, op = small_net(), make_operator('cs', 100, (1, 16, 16), seed=0)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    y = op.measure(x, 0.05, seed=0)
    for alpha in (0.0, 0.01, 0.1):
        r = desyre(y, op, net, alpha=alpha, steps=1, init='tikhonov', tol=0)
        h = r.history[:, :, 0]
        fct.test_eq(len(h), 2)
        assert (h[1] < h[0]).all(), (alpha, h)                               # one backtracked proximal step from E(x0)
        xi0 = net.encode(r.extra['x0'])
        F = lambda xi: 0.5 * (op(net(xi)) - y).pow(2).sum(1) + alpha * (net.coef_weights * xi.abs()).sum(1)
        fct.test_close(h[0], F(xi0), eps=1e-4); fct.test_close(h[1], F(r.z), eps=1e-4)   # the history is the objective

def test_identity_decoder_recovers_sparse_codes():
    D, op = IdentityDecoder((1, 8, 8)), make_operator('cs', 40, (1, 8, 8), seed=0)
    xi = sparse_codes(3, 64, 4)
    r = desyre(op(D(xi)), op, D, alpha=1e-3, steps=2000, init=torch.zeros(3, 64), tol=1e-7, clamp=False)
    fct.test_eq((r.z != 0), (xi != 0))                                       # the support exactly
    assert ((r.z - xi).norm(dim=1) / xi.norm(dim=1)).max() < 5e-3            # the values up to the l1 bias
    fct.test_eq(r.method, 'desyre'); fct.test_eq(r.all_z.shape, (3, 1, 64)); fct.test_eq(r.misfit.shape, (3, 1))

def test_discrepancy_principle():
    D, op = IdentityDecoder((1, 8, 8)), make_operator('cs', 32, (1, 8, 8), seed=0)
    xi, sigma = sparse_codes(3, 64, 4, seed=1), 0.05
    y = op.measure(D(xi), sigma, seed=0)
    grid = [0.3, 0.1, 0.03, 0.01, 0.003]
    r = desyre(y, op, D, alpha='discrepancy', noise_std=sigma, alphas=grid, steps=400, init=torch.zeros(3, 64), clamp=False)
    bound = 32 * sigma**2
    assert (r.misfit[:, 0] <= bound + 1e-5).all(), r.misfit
    for i, a in enumerate(r.extra['alpha'].tolist()):                        # the largest alpha of the grid that fits
        bigger = [g for g in grid if g > a * (1 + 1e-5)]   # alpha is float32
        if bigger:
            rb = desyre(y[i:i + 1], op, D, alpha=min(bigger), steps=400, init=torch.zeros(1, 64), clamp=False)
            assert rb.misfit.item() > bound, (a, rb.misfit)

def test_bad_inputs_and_caller_state():
    net, op = small_net(), make_operator('inpaint', 0.5, (1, 16, 16), seed=0)
    y = op.measure(torch.rand(2, 1, 16, 16), 0.05, seed=0)
    with pytest.raises(ValueError, match="alpha='discrepancy' needs noise_std"): desyre(y, op, net, alpha='discrepancy')
    with pytest.raises(ValueError, match="alpha must be one of"): desyre(y, op, net, alpha='best')
    with pytest.raises(ValueError, match=r'init must be images \(B, \*op.in_shape\)'): desyre(y, op, net, init=torch.zeros(2, 7))
    with pytest.raises(ValueError, match="init='fbp' needs an operator with an fbp method"): desyre(y, op, net, init='fbp')
    with pytest.raises(ValueError, match="init must be one of"): classical_start(y, op, 'bm3d')
    net.train(); flags = [p.requires_grad for p in net.parameters()]
    bn = net.enc[0][0][1].running_mean.clone()
    r = desyre(y, op, net, alpha=0.01, steps=3)
    fct.test_eq(net.training, True); fct.test_eq([p.requires_grad for p in net.parameters()], flags)
    fct.test_eq(net.enc[0][0][1].running_mean, bn)                          # eval mode inside: BN statistics untouched
    assert r.x.min() >= 0 and r.x.max() <= 1

def test_train_resume_is_exact(tmp_path):
    x = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0); a = TightFrameUNet((1, 8, 8), 1, width=2)
    train_desyre(a, x, steps=4, batch_size=4, progress=False)
    torch.manual_seed(0); b = TightFrameUNet((1, 8, 8), 1, width=2)
    ck = tmp_path/'ck.pt'
    train_desyre(b, x, steps=4, batch_size=4, progress=False, ckpt_path=ck, stop_at=2)
    h = train_desyre(b, x, steps=4, batch_size=4, progress=False, ckpt_path=ck, resume=True)
    fct.test_eq(h["steps_done"], 4)
    for p, q in zip(a.state_dict().values(), b.state_dict().values()): assert torch.equal(p, q)
    fct.test_eq(load_desyre(ck).state_dict()['out.weight'], b.state_dict()['out.weight'])   # a checkpoint loads as a network

def test_shipped_list():
    fct.test_eq(list_desyre(), ['desyre-ellipses', 'desyre-fmnist'])
    with pytest.raises(ValueError, match="unknown DESYRE network 'nope'"): desyre_card('nope')

@pytest.mark.parametrize('name', ['desyre-fmnist', 'desyre-ellipses'])
def test_shipped_card_reconstruction(name):
    card, net = desyre_card(name), load_desyre(name)
    fct.test_eq(net.latent_dim, card['coefficients']); fct.test_eq(net.config(), card['config'])
    fct.test_eq(sum(p.numel() for p in net.parameters()), card['parameters'])
    assert card['command'].startswith('python scripts/train_desyre.py')
    from genprior_nb.data import load_dataset
    x = load_dataset(card['data'], 'test', n=200)[0]
    fct.test_eq(list(x.shape[1:]), card['config']['image_shape'])
    with torch.no_grad(): p = psnr(net.reconstruct(x), x).mean().item()
    # the card's number on the same 200 images: same weights, same images, only float summation order may differ
    assert abs(p - card['eval']['recon_psnr_first_200']) < 0.01, (p, card['eval'])
    assert abs(p - card['eval']['recon_psnr_mean']) < 1.0, (p, card['eval'])   # 200 images represent the whole test split

def test_settings():
    s = desyre_settings('inpaint', 0.25)
    fct.test_eq(sorted(s), ['alpha', 'init', 'init_lam', 'steps'])
    assert 0 < s['alpha'] < 1
    with pytest.raises(ValueError, match='no tuned DESYRE settings for fmnist inpaint 0.33'): desyre_settings('inpaint', 0.33)
