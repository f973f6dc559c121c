"Amortised latent starts: the encoder's training (resume, modes), amortised_init's restarts, loading, and the shipped encoders (never worse than the prior start)."
import pytest
import torch
from genprior_nb.generators import LinearGenerator
from genprior_nb.operators import CompressedSensing, RandomInpainting
from genprior_nb.latent_opt import csgm, initial_latents
from genprior_nb.metrics import psnr
from genprior_nb.amortised import (InversionEncoder, train_inversion_encoder, amortised_init, load_inversion_encoder,
                                   list_inversion_encoders, build_inversion_encoder, degrade)

def linear_generator(k=3, seed=0):
    W = torch.linalg.qr(torch.randn(784, k, generator=torch.Generator().manual_seed(seed)))[0] * 4
    return LinearGenerator(W).eval()

def test_resume_is_exact(tmp_path):
    "Stopping at step 6 and resuming to 10 gives the same weights as 10 steps in one go."
    G = linear_generator()
    torch.manual_seed(0); a = InversionEncoder(3, width=8)
    train_inversion_encoder(a, G, steps=10, batch_size=8, progress=False)
    torch.manual_seed(0); b = InversionEncoder(3, width=8)
    ck = tmp_path/'checkpoint.pt'
    train_inversion_encoder(b, G, steps=10, batch_size=8, progress=False, ckpt_path=ck, ckpt_every=3, stop_at=6)
    torch.manual_seed(1); c = InversionEncoder(3, width=8)   # other initial weights: resume must restore them
    h = train_inversion_encoder(c, G, steps=10, batch_size=8, progress=False, ckpt_path=ck, ckpt_every=3, resume=True)
    assert h['steps_done'] == 10
    for p, q in zip(a.state_dict().values(), c.state_dict().values()): assert torch.equal(p, q)
    assert load_inversion_encoder(ck).config() == c.config()

def test_modes_and_flags_come_back():
    G = linear_generator(); G.train()
    E = InversionEncoder(3, width=8)
    train_inversion_encoder(E, G, steps=2, batch_size=4, progress=False)
    assert G.training and not E.training and all(not p.requires_grad for p in G.parameters())

def test_degrade_is_seeded_and_clipped():
    x = torch.rand(4, 1, 28, 28)
    a = degrade(x, torch.Generator().manual_seed(3), 0.1, 1.5); b = degrade(x, torch.Generator().manual_seed(3), 0.1, 1.5)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    assert torch.equal(degrade(x, torch.Generator().manual_seed(3), 0.0, 0.0), x)   # no noise, no blur: the clean images

def test_amortised_init_shapes_and_draws():
    G = linear_generator(); E = InversionEncoder(3, width=8).eval()
    op = CompressedSensing(50, seed=0); y = op.measure(torch.rand(5, 1, 28, 28), 0.05, seed=0)
    z = amortised_init(y, op, E, G, restarts=4, seed=2, start='tikhonov')
    assert z.shape == (5, 4, 3)
    assert torch.equal(z[:, 1:], initial_latents(G, 5, 4, 2)[:, 1:])
    from genprior_nb.baselines import classical_start
    with torch.no_grad(): assert torch.allclose(z[:, 0], E(classical_start(y, op, 'tikhonov')))
    assert E.training is False and all(p.requires_grad for p in E.parameters())   # the caller's flags are left alone

def test_bad_inputs():
    G = linear_generator()
    with pytest.raises(TypeError, match="E must be an InversionEncoder, got Linear"):
        train_inversion_encoder(torch.nn.Linear(2, 2), G, steps=1)
    with pytest.raises(ValueError, match=r"E takes images of shape \(1, 32, 32\) but G makes \(1, 28, 28\)"):
        train_inversion_encoder(InversionEncoder(3, (1, 32, 32), width=8), G, steps=1)
    with pytest.raises(ValueError, match="config\\['model'\\] must be 'inversion_encoder', got 'vae'"):
        build_inversion_encoder({'model': 'vae'})
    op = CompressedSensing(50, seed=0); y = op.measure(torch.rand(2, 1, 28, 28), 0.05, seed=0)
    with pytest.raises(TypeError, match="E must be a torch.nn.Module mapping images to codes, got str"):
        amortised_init(y, op, 'encoder', G)
    with pytest.raises(ValueError, match="restarts must be"):
        amortised_init(y, op, InversionEncoder(3, width=8), G, restarts=0)

@pytest.mark.parametrize('name', list_inversion_encoders())
def test_shipped_encoder_never_worse_than_prior_start(name):
    "On a fixed batch (16 images; CS m = 150 and 25% inpainting), csgm from the amortised start is at least as good as from the prior."
    from genprior_nb.pretrained import load_pretrained, model_card
    from genprior_nb.data import eval_images
    gname = name[len('inv-'):]
    G, E = load_pretrained(gname), load_inversion_encoder(name)
    x = eval_images(16, seed=1, dataset=model_card(gname)['data'])[0]
    for op in (CompressedSensing(150, seed=0), RandomInpainting(0.25, seed=0)):
        y = op.measure(x, 0.05, seed=0)
        prior = csgm(y, op, G, restarts=3, steps=100, seed=0)
        amort = csgm(y, op, G, restarts=3, steps=100, seed=0, init=amortised_init(y, op, E, G, 3, 0))
        assert amort.misfit.min(1).values.mean() <= prior.misfit.min(1).values.mean() * 1.001
        assert psnr(amort.x, x).mean() >= psnr(prior.x, x).mean() - 0.05
