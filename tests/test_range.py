"Tests of genprior_nb.range: representation error, subset combinatorics, restart statistics, loss slices, far samples."
import itertools, math
from types import SimpleNamespace
import numpy as np
import pytest
import torch
import fastcore.test as fct

from genprior_nb.generators import LinearGenerator
from genprior_nb.range import (representation_error, recovery_rate, restart_statistics, subset_best_weights,
                               best_of_subset_prob, loss_slice, random_plane, plane_through, far_samples, saturation)

torch.set_num_threads(1)

@pytest.fixture(scope='module')
def linear():
    g = torch.Generator().manual_seed(0)
    W = torch.linalg.qr(torch.randn(64, 3, generator=g, dtype=torch.float64))[0].float()
    return LinearGenerator(W, (1, 8, 8)), W

def test_in_range_images_have_no_representation_error(vae):
    x = vae(torch.randn(4, 8, generator=torch.Generator().manual_seed(1)))
    r = representation_error(vae, x, restarts=3, steps=300)
    assert (r.psnr > 40).all(), r.psnr
    assert (r.distance < 0.05).all(), r.distance
    fct.test_eq(r.prior.misfit.shape, (4, 3)); fct.test_eq(r.z.shape, (4, 8))
    assert r.encoder is not None and r.psnr_encoder_raw.shape == (4,)
    # the best is never worse than either start
    assert (r.psnr >= torch.minimum(r.psnr_prior, r.psnr_encoder) - 1e-4).all()

def test_linear_generator_distance_is_the_orthogonal_component(linear):
    G, W = linear
    g = torch.Generator().manual_seed(2)
    z0 = torch.randn(3, 3, generator=g); perp = torch.randn(3, 64, generator=g); perp -= (perp @ W) @ W.T
    x = (z0 @ W.T + 0.2 * perp).view(3, 1, 8, 8)
    r = representation_error(G, x, restarts=2, steps=300, lr=0.1)
    fct.test_close(r.distance, 0.2 * perp.norm(dim=1), eps=1e-3)
    fct.test_close(r.z, z0, eps=1e-3)
    assert r.encoder is None and not r.from_encoder.any()

def test_input_checks(linear, vae):
    G, _ = linear
    with pytest.raises(ValueError, match='use_encoder=True needs a generator with an encoder'):
        representation_error(G, torch.zeros(1, 1, 8, 8), use_encoder=True)
    with pytest.raises(ValueError, match='restarts must be an integer in'):
        representation_error(G, torch.zeros(1, 1, 8, 8), restarts=0)
    with pytest.raises(ValueError, match='x must have image shape'):
        representation_error(vae, torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match='misfit tensor of shape'):
        restart_statistics(torch.zeros(4))

@pytest.mark.parametrize('R', [1, 3, 6])
def test_subset_probability_matches_brute_force(R):
    g = torch.Generator().manual_seed(R)
    misfit = torch.rand(5, R, generator=g); good = torch.rand(5, R, generator=g) > 0.5
    for k in range(1, R + 1):
        subsets = list(itertools.combinations(range(R), k))
        bf = [np.mean([bool(good[b, min(s, key=lambda i: misfit[b, i])]) for s in subsets]) for b in range(5)]
        fct.test_close(best_of_subset_prob(misfit, good, k).numpy(), np.array(bf), eps=1e-12)
    fct.test_close(subset_best_weights(R, 1), np.full(R, 1 / R))

def test_restart_statistics_known_answer():
    misfit = torch.tensor([[1.0, 1.01, 5.0, 7.0], [2.0, 3.0, 4.0, 5.0], [0.5, 0.5, 0.5, 0.5]])
    z = torch.tensor([[3., 4.], [0., 1.], [1., 0.]])
    res = SimpleNamespace(misfit=misfit, z=z)  # ReconResult-like
    st = restart_statistics(res, rtol=0.05, atol=0.)
    fct.test_eq(st.n_success, [2, 1, 4])
    want = np.array([[1/2, 5/6, 1, 1], [1/4, 1/2, 3/4, 1], [1, 1, 1, 1]])
    fct.test_close(st.p_reach_per_image, want)
    fct.test_close(st.p_reach, want.mean(0))
    fct.test_eq(st.k95, 4)  # mean over images: k=3 gives (1 + 3/4 + 1)/3 = 0.917 < 0.95, k=4 gives 1
    fct.test_eq(st.k95_per_image, [5, 11, 1])
    fct.test_close(st.z_norm, [5., 1., 1.])
    assert st.latent_dim == 2

def test_restart_statistics_extrapolation_formula():
    # one image with s good restarts out of R: k95 (independent draws) = ceil(log 0.05 / log(1 - s/R))
    for R, s in [(10, 1), (10, 3), (20, 7)]:
        m = torch.cat([torch.zeros(s), torch.arange(1, R - s + 1).float()])[None]
        st = restart_statistics(m, rtol=0., atol=1e-9)
        fct.test_eq(st.k95_extrapolated, math.ceil(math.log(0.05) / math.log(1 - s / R)))
        fct.test_close(st.p_reach[0], s / R)

def test_recovery_rate_convex_problem_always_recovers(linear):
    G, _ = linear
    rr = recovery_rate(G, n=4, restarts_list=(1, 2), steps=300, lr=0.1)
    fct.test_eq(rr.rate, [1., 1.]); fct.test_eq(rr.rate_z, [1., 1.]); fct.test_eq(rr.any_restart, 1.)
    fct.test_eq(rr.psnr.shape, (4, 2))

def test_loss_slice_is_the_analytic_paraboloid(linear):
    G, W = linear
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    zc = torch.randn(3, generator=torch.Generator().manual_seed(4))
    d1, d2 = random_plane(3, seed=5)
    a, b, L = loss_slice(G, x, zc, d1, d2, span=1., n=9)
    fct.test_eq(L.shape, (9, 9))
    i, j = 2, 7
    z = zc + a[j] * d1 + b[i] * d2
    fct.test_close(L[i, j], float((z @ W.T - x.flatten()).pow(2).sum()), eps=1e-4)
    e1, e2 = plane_through(zc, zc + d1)
    fct.test_close(float(e1 @ e2), 0., eps=1e-6); fct.test_close(float(e2.norm()), float(e1.norm()), eps=1e-6)
    with pytest.raises(ValueError, match='z_other equals z_star'): plane_through(zc, zc)

def test_far_samples(vae):
    fs = far_samples(vae, (1, 50), n=3)
    fct.test_eq(fs.shape, (2, 3, 1, 28, 28))
    assert (saturation(fs[1]) >= 0).all() and (saturation(fs[1]) <= 1).all()
    with pytest.raises(ValueError, match='stds'): far_samples(vae, (1, -2))
