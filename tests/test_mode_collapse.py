"Tests of genprior_nb.mode_collapse: birthday test, precision/recall, Frechet distance, EMD and the shipped classifier."
import json, math
import numpy as np
import pytest
import torch
from conftest import Payload
import fastcore.test as fct

from genprior_nb.mode_collapse import (FMNISTClassifier, load_classifier, classifier_card, predict_proba, embed,
                                       birthday_test, birthday_sweep, calibrate_threshold, collision_support, knn_dist, coverage_stats,
                                       class_coverage, frechet_distance, classifier_fd, precision_recall,
                                       density_coverage, emd, mode_collapse_report)
from genprior_nb.core import UnsafeCheckpointError
from genprior_nb.data import load_fashion_mnist, eval_images
from genprior_nb.pretrained import load_pretrained


def rand_images(n, seed):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))

# ---------------------------------------------------------------- birthday test

def test_birthday_finds_planted_duplicates_and_none_without():
    clean = rand_images(400, 0)
    dup = clean.clone()
    dup[360:] = (clean[:40] + 0.005*torch.randn(40, 1, 28, 28, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    r0, r1 = birthday_test(clean, 200, threshold=1.0, n_batches=10), birthday_test(dup, 200, threshold=1.0, n_batches=10)
    fct.test_eq(r0.fraction, 0.0)
    fct.test_eq(r1.fraction, 1.0)  # 40 planted pairs, each in a half-size batch with prob 1/4: P(none) = 0.75^40 ~ 1e-5
    # the flagged pairs are the planted ones: each pair's two images differ only by the small perturbation
    assert (r1.pairs[:, 0] - r1.pairs[:, 1]).flatten(1).norm(dim=1).max() < 0.3
    fct.test_close(r1.dists, (r1.pairs[:, 0] - r1.pairs[:, 1]).flatten(1).norm(dim=1), eps=1e-3)

def test_birthday_from_sampler_and_sweep_support():
    K = rand_images(1024, 2)
    with_repl = lambda n, g: K[torch.randint(len(K), (n,), generator=g)]
    sw = birthday_sweep(with_repl, threshold=0.5, sizes=(16, 23, 32, 45, 64, 90, 128), n_batches=20)
    assert sw['s50'] is not None and 1024/2 <= sw['support'] <= 1024*4, sw
    sw0 = birthday_sweep(K, threshold=0.5, sizes=(16, 64, 128), n_batches=5)  # without replacement: never
    fct.test_eq(sw0['support'], None); fct.test_eq(sw0['support_lower_bound'], 128**2)

def test_collision_support_counts_planted_pairs():
    clean = rand_images(300, 4)
    dup = clean.clone(); dup[250:] = clean[:50] + 0.001
    fct.test_eq(collision_support(clean, 1.0)['close_pairs'], 0)
    cs = collision_support(dup, 1.0, batch_size=64)
    fct.test_eq(cs['close_pairs'], 50); fct.test_close(cs['support'], 300*299/2/50, eps=1e-9)
    K = rand_images(500, 5)
    cs = collision_support(K[torch.randint(500, (2000,), generator=torch.Generator().manual_seed(0))], 0.5)
    assert 500/1.3 < cs['support'] < 500*1.3, cs  # support of a uniform distribution on 500 images

def test_calibrate_threshold_quantile():
    x = torch.tensor([[0.], [1.], [1.1], [5.], [5.5], [20.]])  # nn distances 1, .1, .1, .5, .5, 14.5
    fct.test_close(calibrate_threshold(x, quantile=0.5, n_query=6), 0.5, eps=1e-6)
    fct.test_close(calibrate_threshold(x, quantile=0.9, n_query=6), 7.75, eps=1e-5)  # linear interpolation between 1 and 14.5
    with pytest.raises(ValueError, match='quantile must be'): calibrate_threshold(x, quantile=1.0)

def test_knn_dist_exclude_self():
    v = torch.tensor([[0.], [2.], [3.]])
    fct.test_eq(knn_dist(v, v, 1, exclude_self=True)[0], torch.tensor([2., 1., 1.]))
    fct.test_eq(knn_dist(v, v, 1)[0], torch.zeros(3))

# ---------------------------------------------------------------- precision / recall, density / coverage

def test_precision_recall_self_and_disjoint():
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(800, 16, generator=g), torch.randn(800, 16, generator=g)
    pr = precision_recall(r, r, k=3); fct.test_eq((pr['precision'], pr['recall']), (1.0, 1.0))
    pr = precision_recall(r, f, k=3); assert pr["precision"] > 0.7 and pr["recall"] > 0.7, pr  # same distribution; k-NN balls in 16-d are a bit small
    pr = precision_recall(r, f + 10, k=3); fct.test_eq((pr['precision'], pr['recall']), (0.0, 0.0))
    # prdc's balls are open: against itself each point lies in its own ball and in those of the points that have it among
    # their 4 nearest (the 5th sits on the boundary), so the density is exactly 5/5 (it was 6/5 with the closed balls of before)
    dc = density_coverage(r, r, k=5); fct.test_close(dc['density'], 1.0, eps=1e-12); fct.test_eq(dc['coverage'], 1.0)
    dc = density_coverage(r, f + 10, k=5); fct.test_eq((dc['density'], dc['coverage']), (0.0, 0.0))

# ---------------------------------------------------------------- Frechet distance

def _exact_moments(n, mu, cov, g):
    "n samples whose sample mean is exactly mu and whose sample covariance is exactly cov."
    z = torch.randn(n, len(mu), generator=g, dtype=torch.float64); z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.atleast_2d(torch.cov(z.T)))).T      # sample covariance I
    return z @ torch.linalg.cholesky(torch.as_tensor(cov, dtype=torch.float64)).T + torch.as_tensor(mu, dtype=torch.float64)

def _sqrtm_psd(c):
    w, v = torch.linalg.eigh(c); return (v * w.clamp_min(0).sqrt()) @ v.T

def test_frechet_identical_and_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 6, generator=g).double()
    fct.test_close(frechet_distance(a, a), 0.0, eps=1e-6)
    # sets with exactly these sample moments: FD is the closed form between the two Gaussians
    fct.test_close(frechet_distance(_exact_moments(400, [0., 0], np.diag([4., 1]), g), _exact_moments(300, [3., -1], np.diag([1., 9]), g)),
                   10 + (2 - 1)**2 + (1 - 3)**2, eps=1e-9)                 # commuting: |dmu|^2 + sum (sqrt s1 - sqrt s2)^2
    fct.test_close(frechet_distance(_exact_moments(50, [0.], [[4.]], g), _exact_moments(60, [1.], [[1.]], g)), 1 + 1, eps=1e-9)
    A = torch.tensor([[1., 0.5], [0., 2.]], dtype=torch.float64); c1, c2 = A @ A.T, torch.diag(torch.tensor([1., 9.], dtype=torch.float64))
    s1 = _sqrtm_psd(c1)  # general case: tr(c1 + c2 - 2 (c1^1/2 c2 c1^1/2)^1/2)
    exact = 10 + (torch.trace(c1 + c2) - 2*torch.trace(_sqrtm_psd(s1 @ c2 @ s1))).item()
    fct.test_close(frechet_distance(_exact_moments(500, [0., 0], c1, g), _exact_moments(500, [3., -1], c2, g)), exact, eps=1e-9)
    with pytest.raises(ValueError, match='feature dimensions differ'): frechet_distance(a, a[:, :3])
    with pytest.raises(ValueError, match='each set needs at least 2 images'): classifier_fd(rand_images(1, 0), rand_images(5, 1))

# ---------------------------------------------------------------- the libraries against the hand-written versions they replaced

def _fd_before(a, b):
    "The hand-written Frechet distance that torchmetrics replaced (scipy sqrtm, regularised when singular)."
    from scipy import linalg
    a, b = a.double().numpy(), b.double().numpy()
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(c1 @ c2)
    if not np.isfinite(covmean).all(): off = 1e-6*np.eye(len(c1)); covmean = linalg.sqrtm((c1 + off) @ (c2 + off))
    return float(((mu1 - mu2)**2).sum() + np.trace(c1) + np.trace(c2) - 2*np.trace(covmean.real))

def _balls_before(query, centres, radii):
    "For each query row, the number of closed balls (centre, radius) containing it: the hand-written version prdc replaced."
    return (torch.cdist(query, centres) <= radii[None]).sum(1)

def _prdc_before(r, f, k_pr=3, k_dc=5):
    r_rad3, f_rad3 = knn_dist(r, r, k_pr, exclude_self=True)[0], knn_dist(f, f, k_pr, exclude_self=True)[0]
    r_rad5 = knn_dist(r, r, k_dc, exclude_self=True)[0]
    return {'precision': (_balls_before(f, r, r_rad3) > 0).float().mean().item(), 'recall': (_balls_before(r, f, f_rad3) > 0).float().mean().item(),
            'density': _balls_before(f, r, r_rad5).float().sum().item() / (k_dc*len(f)),
            'coverage': (knn_dist(r, f, 1)[0] <= r_rad5).float().mean().item()}

@pytest.mark.filterwarnings('ignore::scipy.linalg.LinAlgWarning')
def test_library_metrics_equal_the_hand_written_ones_on_the_shipped_generators():
    "Stated tolerances: FD 1e-6 relative; precision, recall, density, coverage within one sample (1/n)."
    n = 600
    clf = load_classifier()
    real = eval_images(n)[0]; fr = embed(real, clf)
    for name in ('vae-fmnist-8', 'ae-fmnist-8', 'wgan-fmnist-8'):
        fake = load_pretrained(name).sample(n, torch.Generator().manual_seed(0)); ff = embed(fake, clf)
        before = _fd_before(fr, ff)
        fct.test_close(frechet_distance(fr, ff), before, eps=1e-6*before)
        if name == 'vae-fmnist-8': fct.test_close(classifier_fd(real, fake, clf), before, eps=1e-6*before)  # the classifier as extractor
        got, want = {**precision_recall(fr, ff, 3), **density_coverage(fr, ff, 5)}, _prdc_before(fr, ff)
        for k in want: assert abs(got[k] - want[k]) <= 1/n + 1e-9, (name, k, got[k], want[k])

# ---------------------------------------------------------------- EMD

def test_emd_self_and_shift():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(200, generator=g).double()
    fct.test_eq(emd(u, u), 0.0)
    fct.test_close(emd(u, u + 1.7), 1.7, eps=1e-9)
    fct.test_close(emd(u, u[torch.randperm(200, generator=g)] - 0.4), 0.4, eps=1e-9)
    v = torch.randn(100, 5, generator=g).double(); shift = torch.tensor([3., 0, 4, 0, 0], dtype=torch.float64)
    fct.test_close(emd(v, v + shift), 5.0, eps=1e-9)
    fct.test_eq(emd(torch.tensor([0., 1.]), torch.tensor([1., 0.])), 0.0)  # a permutation costs nothing
    x = rand_images(30, 3)
    fct.test_eq(emd(x, x), 0.0)
    with pytest.raises(ValueError, match='same number'): emd(x, x[:10])

# ---------------------------------------------------------------- coverage

def test_coverage_stats():
    fct.test_close(coverage_stats([3]*10)['tv'], 0.0)
    s = coverage_stats([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    fct.test_close(s['tv'], 0.9); fct.test_close(s['kl'], math.log(10))
    fct.test_close(coverage_stats([1, 1, 0, 0])['tv'], 0.5)
    with pytest.raises(ValueError, match='non-negative'): coverage_stats([1, -1])

# ---------------------------------------------------------------- shipped classifier

def test_classifier_accuracy_on_test_split():
    x, y = load_fashion_mnist('test')
    clf = load_classifier()
    assert not clf.training and not any(p.requires_grad for p in clf.parameters())
    acc = (predict_proba(x, clf).argmax(1) == y).float().mean().item()
    assert acc >= 0.90, acc
    card = classifier_card()
    fct.test_close(acc, card['eval']['test_accuracy'], eps=1e-3)
    fct.test_eq(card['config']['model'], 'fmnist-classifier')
    fct.test_eq(embed(x[:4], clf).shape, (4, clf.emb_dim))
    cov = class_coverage(x[:2000], clf)
    assert cov['tv'] < 0.05 and cov['confidence'] > 0.85, cov

def test_load_classifier_refuses_mismatched_or_unsafe(tmp_path):
    torch.save(FMNISTClassifier(width=16).state_dict(), tmp_path/'small.pt')
    with pytest.raises(ValueError, match='does not match the FMNISTClassifier architecture'): load_classifier(path=tmp_path/'small.pt')
    torch.save({'not': 'a state dict', 'w': torch.zeros(1)}, tmp_path/'odd.pt')
    with pytest.raises(UnsafeCheckpointError): load_classifier(path=tmp_path/'odd.pt')
    torch.save({'x': Payload(tmp_path/'pwned')}, tmp_path/'evil.pt')
    with pytest.raises(UnsafeCheckpointError, match='refused to load'): load_classifier(path=tmp_path/'evil.pt')

def test_report_small_on_real_images():
    x, _ = load_fashion_mnist('train')
    rep = mode_collapse_report(x[:3000], n=200, n_emd=100, n_pool=600, sizes=(64, 256), n_batches=3, threshold=1.6)
    for k in ('coverage_tv', 'fd', 'precision', 'recall', 'density', 'coverage', 'emd', 's50', 'support', 'support_pairs', 'dup_threshold'):
        assert k in rep, k
    assert rep['coverage_tv'] < 0.25 and rep['precision'] > 0.5 and rep['recall'] > 0.5, rep
    json.dumps(rep)  # plain numbers only
    with pytest.raises(ValueError, match='n_pool=10 is smaller'): mode_collapse_report(x[:300], n=10, n_pool=10)
