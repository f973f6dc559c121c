"Tests of genprior_nb.metrics: closed forms, equality with scikit-image and scipy, and input checks."
import math
import numpy as np
import pytest
import torch
import fastcore.test as fct
from scipy import stats
from skimage.metrics import structural_similarity, peak_signal_noise_ratio
from genprior_nb.metrics import psnr, ssim, data_misfit, mean_ci, compare, format_table, PSNR_MAX
from genprior_nb.operators import CompressedSensing, Identity, RandomInpainting, GaussianBlur
from genprior_nb.data import shapes_dataset


@pytest.fixture(scope='module')
def pair():
    x = shapes_dataset(6, seed=5)
    g = torch.Generator().manual_seed(0)
    return (x + 0.1*torch.randn(x.shape, generator=g)).clamp(0, 1), x


def test_psnr_known_values():
    z = torch.zeros(2, 1, 28, 28, dtype=torch.float64)
    fct.test_close(psnr(z + 0.1, z), torch.full((2,), 20., dtype=torch.float64), eps=1e-12)
    fct.test_close(psnr(z + 0.01, z), torch.full((2,), 40., dtype=torch.float64), eps=1e-10)
    fct.test_eq(psnr(z, z), torch.full((2,), PSNR_MAX, dtype=torch.float64))
    fct.test_eq(PSNR_MAX, 100.)
    fct.test_close(psnr(255*z + 25.5, 255*z, data_range=255.), torch.full((2,), 20., dtype=torch.float64), eps=1e-10)


def test_psnr_matches_skimage(pair):
    xn, x = pair
    ref = torch.tensor([peak_signal_noise_ratio(a.double().numpy(), b.double().numpy(), data_range=1) for a, b in zip(x, xn)])
    fct.test_close(psnr(xn, x), ref, eps=1e-6)
    fct.test_eq(psnr(xn, x).shape, (6,))


def test_ssim_matches_skimage(pair):
    xn, x = pair
    xb = GaussianBlur(5, 1.5)(x)
    for a in (xn, xb, RandomInpainting(0.5)(x)):
        ref = torch.tensor([structural_similarity(p[0].double().numpy(), q[0].double().numpy(), gaussian_weights=True,
                                                  sigma=1.5, use_sample_covariance=False, data_range=1) for p, q in zip(a, x)])
        fct.test_close(ssim(a, x), ref, eps=1e-4)
    fct.test_close(ssim(x, x), torch.ones(6, dtype=torch.float64), eps=1e-12)
    fct.test_close(ssim(xn, x), ssim(x, xn), eps=1e-12)
    # non-square images and a float64 / float32 mix of the same values
    a, b = torch.rand(2, 1, 16, 23, dtype=torch.float64), torch.rand(2, 1, 16, 23, dtype=torch.float64)
    ref = torch.tensor([structural_similarity(p[0].numpy(), q[0].numpy(), gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=1) for p, q in zip(a, b)])
    fct.test_close(ssim(a, b), ref, eps=1e-4)


def test_metric_input_checks(pair):
    xn, x = pair
    fct.test_fail(lambda: psnr(xn, x[:2]), contains='x_hat and x must have the same shape')
    fct.test_fail(lambda: psnr(xn[0], x), contains='x_hat must be a 4-D tensor')
    fct.test_fail(lambda: psnr(xn, x, data_range=-1), contains='data_range must be a finite number')
    fct.test_fail(lambda: psnr(xn, torch.full_like(x, float('nan'))), contains='x contains NaN')
    fct.test_fail(lambda: ssim(torch.zeros(1, 1, 10, 10), torch.zeros(1, 1, 10, 10)), contains='at least 11x11')
    fct.test_fail(lambda: ssim(xn, x.numpy()), contains='x must be a torch.Tensor')


def test_data_misfit():
    cs = CompressedSensing(40, in_shape=(1, 10, 10))
    x = torch.rand(3, 1, 10, 10); y = cs.measure(x, 0.1, seed=2)
    fct.test_close(data_misfit(cs, x, y), ((y - x.flatten(1) @ cs.matrix.T)**2).sum(1), eps=1e-5)
    fct.test_close(data_misfit(cs, x, cs(x)), torch.zeros(3), eps=1e-10)
    fct.test_close(data_misfit(Identity(in_shape=(1, 10, 10)), x + 0.5, x), torch.full((3,), 25.), eps=1e-4)
    fct.test_fail(lambda: data_misfit(cs, x, y[:2]), contains='y must have shape (3, 40)')


def test_mean_ci_vs_scipy():
    rng = np.random.default_rng(0); v = rng.normal(25, 3, 40)
    m, h = mean_ci(v)
    lo, hi = stats.t.interval(0.95, 39, loc=v.mean(), scale=stats.sem(v))
    fct.test_close((m - h, m + h), (lo, hi), eps=1e-10)
    fct.test_close(mean_ci(torch.tensor(v), 0.99)[1], stats.t.ppf(0.995, 39)*stats.sem(v), eps=1e-10)
    fct.test_close(mean_ci([0., 2.]), (1., 12.706204736174698), eps=1e-9)
    fct.test_eq(mean_ci([5., 5., 5.]), (5., 0.))
    assert math.isnan(mean_ci([1.])[1])
    fct.test_fail(lambda: mean_ci([]), contains='values is empty')
    fct.test_fail(lambda: mean_ci([1., float('inf')]), contains='NaN or inf')
    fct.test_fail(lambda: mean_ci([1., 2.], level=1.), contains='level must be a finite number in (0, 1)')
    fct.test_fail(lambda: mean_ci(['a', 'b']), contains='values must be numbers')


def test_compare_and_format_table():
    recs = [dict(method='a', operator='cs', level=0.1, psnr=torch.tensor([10., 12.]), ssim=torch.tensor([.5, .7]), seconds=1.),
            dict(method='b', operator='cs', level=0.1, psnr=np.array([14., 16.]), ssim=[.8, .9], seconds=2.),
            dict(method='a', operator='cs', level=0.1, psnr=[11.], ssim=[.6], seconds=0.5),
            dict(method='a', operator='denoise', level=None, psnr=[30., 31., 32.])]
    rows = compare(recs)
    fct.test_eq([(r['operator'], r['level'], r['method'], r['n']) for r in rows],
                [('cs', 0.1, 'a', 3), ('cs', 0.1, 'b', 2), ('denoise', None, 'a', 3)])
    fct.test_close(rows[0]['psnr_mean'], 11., eps=1e-12); fct.test_eq(rows[0]['seconds'], 1.5)
    fct.test_close(rows[0]['psnr_ci'], stats.t.ppf(0.975, 2)*1/math.sqrt(3), eps=1e-10)
    fct.test_eq((rows[2]['ssim_mean'], rows[2]['seconds']), (None, None))
    t = format_table(rows)
    lines = t.splitlines()
    fct.test_eq(lines[0], '| operator | level | method | n | PSNR (dB) | SSIM | seconds |')
    fct.test_eq(len(lines), 5)
    assert '| cs | 0.1 | b | 2 | **15.00 ± 12.71** | 0.850 ± 0.635 | 2 |' in t
    assert '| denoise |  | a | 3 | **31.00 ± 2.48** |  |  |' in t
    assert '**' not in format_table(rows, bold_best=False)
    fct.test_fail(lambda: compare([dict(method='a', psnr=[1.])]), contains="lacks the key(s) ['operator']")
    fct.test_fail(lambda: compare([]), contains='non-empty list')
    fct.test_fail(lambda: compare(['x']), contains='results[0] must be a dict')
    fct.test_fail(lambda: compare([dict(method='a', operator='cs', psnr=[1., float('nan')])]), contains='contains NaN')
    fct.test_fail(lambda: format_table([]), contains='rows is empty')
