"bf16 autocast: training (AE/VAE/WGAN-GP) and the generator passes of the solvers via `autocast_generator`; float32 stays the default."
import pytest
import torch
import fastcore.test as fct

from genprior_nb.generators import autocast_generator, AutocastGenerator
from genprior_nb.vae import VAE, train_autoencoder
from genprior_nb.wgan import WGANGenerator, Critic, train_wgan
from genprior_nb.core import safe_torch_load

@pytest.fixture(scope='module')
def X():
    return torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(0))

def _vae(X, **kw):
    torch.manual_seed(0); m = VAE(4, 8, image_shape=(1, 16, 16))
    return m, train_autoencoder(m, X, batch_size=16, progress=False, log_every=1, **kw)

def test_bf16_training_runs_resumes_exactly_and_is_recorded(X, tmp_path):
    full, h = _vae(X, steps=6, precision='bf16', ckpt_path=tmp_path/'full.pt')
    f32, h32 = _vae(X, steps=6)
    assert h['loss'] != h32['loss'] and abs(h['loss'][-1] - h32['loss'][-1]) < 0.02*h32['loss'][-1]   # bf16 really ran, close
    fct.test_eq(safe_torch_load(tmp_path/'full.pt')['config']['precision'], 'bf16')
    _vae(X, steps=6, precision='bf16', ckpt_path=tmp_path/'part.pt', max_minutes=0)   # stops after one step
    resumed, _ = _vae(X, steps=6, precision='bf16', ckpt_path=tmp_path/'part.pt', resume=True)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()): fct.test_eq(a, b)
    with pytest.raises(ValueError, match="resume: the checkpoint .* was written with config"):   # float32 cannot continue a bf16 run
        _vae(X, steps=6, ckpt_path=tmp_path/'full.pt', resume=True)
    assert all(p.dtype == torch.float32 for p in full.parameters())

def test_bf16_wgan_training(X):
    torch.manual_seed(0); G, D = WGANGenerator(4, 8, (1, 16, 16)), Critic(8, (1, 16, 16))
    h = train_wgan(G, D, X, steps=3, batch_size=16, n_critic=2, lr=1e-3, precision='bf16', progress=False, log_every=1)
    assert all(v == v and abs(v) < 1e6 for k in ('loss_d', 'loss_g', 'gp') for v in h[k])

def test_precision_must_be_known(X):
    msg = "precision must be one of \\['bf16', 'fp32'\\], got 'fp16'"
    with pytest.raises(ValueError, match=msg): _vae(X, steps=1, precision='fp16')
    with pytest.raises(ValueError, match=msg): train_wgan(WGANGenerator(4, 8, (1, 16, 16)), Critic(8, (1, 16, 16)), X, steps=1, precision='fp16')
    with pytest.raises(ValueError, match=msg): autocast_generator(VAE(4, 8), 'fp16')

def test_solvers_take_the_bf16_generator_unchanged():
    "csgm with `autocast_generator(G, 'bf16')`: float32 results within a few hundredths of a dB of the float32 solve."
    from genprior_nb.pretrained import load_pretrained
    from genprior_nb.operators import make_operator
    from genprior_nb.latent_opt import csgm, reconstruct
    from genprior_nb.data import eval_images
    from genprior_nb.metrics import psnr
    x, _ = eval_images(4)
    op = make_operator('inpaint', 0.25)
    y = op.measure(x, 0.05, seed=0)
    G = load_pretrained('vae-fmnist-8')
    before = ([m.training for m in G.modules()], [p.requires_grad for p in G.parameters()])
    Gb = autocast_generator(G, 'bf16')
    assert isinstance(Gb, AutocastGenerator) and autocast_generator(G, 'fp32') is G
    r32, r16 = csgm(y, op, G, restarts=2, steps=60), csgm(y, op, Gb, restarts=2, steps=60)
    fct.test_eq(r16.x.dtype, torch.float32)
    assert not torch.equal(r16.x, r32.x)                       # the passes ran in bf16
    assert abs(psnr(r16.x, x).mean() - psnr(r32.x, x).mean()) < 0.1
    r = reconstruct(y, op, Gb, 'csgm', restarts=2, steps=20, init='encoder')   # the encoder too, through the wrapper
    fct.test_eq(r.x.shape, x.shape)
    fct.test_eq(([m.training for m in G.modules()], [p.requires_grad for p in G.parameters()]), before)   # the caller's G untouched
