"Tests of genprior_nb.scorecard: evaluate_generator on small sizes and the side-by-side table."
import json
import pytest
import fastcore.test as fct

from genprior_nb.range import representation_error
from genprior_nb.data import eval_images
import math
from genprior_nb.scorecard import evaluate_generator, scorecard, criterion_value

SMALL = dict(n_images=4, restarts=2, steps=20, n_recovery=3, n_samples=40, progress=False,
             n_pool=64, sizes=(16, 32), n_batches=2, n_emd=20, threshold=3.0)  # a fixed threshold skips the calibration on 60,000 training images


@pytest.mark.parametrize('dataset', ['fmnist', 'shapes'])
def test_evaluate_generator_small(tiny_ae, dataset):
    ev = evaluate_generator(tiny_ae, dataset, **SMALL)
    fct.test_eq(ev['dataset'], dataset); fct.test_eq(ev['latent_dim'], 8)
    fct.test_eq(set(ev['seconds']), {'range', 'recovery', 'smoothness', 'samples'})
    for k in ('repr_psnr', 'repr_psnr_p10', 'recovery_1', 'recovery_max', 'p_best_1', 'restarts_95', 'z_norm_ratio',
              'smooth_max_over_mean', 'emd', 's50', 'support'):
        assert k in ev, k
    assert ev['repr_psnr_p10'] <= ev['repr_psnr'] + 1e-9
    assert 0 <= ev['recovery_1'] <= ev['recovery_max'] <= 1 and 0 < ev['p_best_1'] <= 1
    assert ev['restarts_95'] >= 1 and ev['smooth_max_over_mean'] >= 1
    assert (('fd' in ev) and ('precision' in ev) and ('coverage_tv' in ev)) == (dataset == 'fmnist'), "classifier criteria only for garments"
    json.dumps(ev)  # plain numbers: the results can be stored

def test_evaluate_generator_matches_representation_error(tiny_ae):
    "The range criterion is exactly `representation_error` on the first n test images with the same seed."
    ev = evaluate_generator(tiny_ae, 'shapes', samples=False, **{k: v for k, v in SMALL.items() if k in ('n_images', 'restarts', 'steps', 'n_recovery', 'progress')})
    rr = representation_error(tiny_ae, eval_images(4, dataset='shapes')[0], restarts=2, steps=20)
    fct.test_close(ev['repr_psnr'], float(rr.psnr.median()), eps=1e-5)
    assert 'emd' not in ev and 'samples' not in ev['seconds']

@pytest.mark.parametrize('threshold,censored', [(0.0, True), (1e3, False)])
def test_birthday_s50_censored_when_no_batch_reaches_a_duplicate(tiny_ae, threshold, censored):
    "With a zero threshold no pair is a duplicate: s50 is unknown and recorded as above the largest batch; with a huge one every batch has one."
    ev = evaluate_generator(tiny_ae, 'shapes', **dict(SMALL, threshold=threshold))
    if censored:
        assert ev['s50'] is None and ev['support'] is None and ev['s50_above'] == 32
        fct.test_close(criterion_value(ev, 's50'), 32 * math.sqrt(2)); fct.test_close(criterion_value(ev, 'support'), 2 * 32**2)
    else: assert ev['s50'] == 16 and 's50_above' not in ev and criterion_value(ev, 's50') == 16

def test_censored_s50_in_the_table_ranks_above_measured_ones():
    t = {r[0]: r[1:] for r in scorecard({'a': {'s50': 1448, 'support': 1448**2}, 'b': {'s50': None, 'support': None, 's50_above': 2048},
                                          'c': {'s50': None, 'support': None}}).table()[1:]}
    fct.test_eq(t['birthday s50 (near-duplicate half the time) (high)'], ['1,448', '**> 2,048**', '-'])
    fct.test_eq(t['implied support size (high)'], ['2.1e+06', '**> 4.2e+06**', '-'])

def test_evaluate_generator_bad_input(tiny_ae):
    with pytest.raises(ValueError, match=r"dataset must be one of \['ellipses', 'fmnist', 'shapes'\], got 'mnist'"): evaluate_generator(tiny_ae, 'mnist')
    with pytest.raises(ValueError, match='n_images must be an integer'): evaluate_generator(tiny_ae, n_images=1)
    with pytest.raises(ValueError, match='restarts must be an integer'): evaluate_generator(tiny_ae, restarts=0)

def test_scorecard_table(tmp_path):
    evals = {'G1': {'repr_psnr': 18.0, 'recall': 0.3, 'fd': 10.0, 's50': 1024, 'support': 1.1e6},
             'G2': {'repr_psnr': 21.0, 'recall': None, 'fd': 30.0, 's50': 90, 'support': 8e3}}
    sc = scorecard(evals)
    t = sc.table()
    fct.test_eq(t[0], ['criterion (better)', 'G1', 'G2'])
    rows = {r[0]: r[1:] for r in t[1:]}
    fct.test_eq(rows['representation PSNR, median (dB) (high)'], ['18.00', '**21.00**'])
    fct.test_eq(rows['recall (k=3) (high)'], ['0.30', '-'])  # one known value: nothing to compare, no bold
    fct.test_eq(rows['Frechet distance (features) (low)'], ['**10.0**', '30.0'])
    fct.test_eq(rows['birthday s50 (near-duplicate half the time) (high)'], ['**1,024**', '90'])
    fct.test_eq(rows['implied support size (high)'], ['**1.1e+06**', '8.0e+03'])
    fct.test_eq(len(t), 6)
    md = sc.markdown().splitlines()
    fct.test_eq(md[1], '|---|---:|---:|'); assert md[2].startswith('| representation PSNR')
    sc.to_json(tmp_path/'s.json')
    fct.test_eq(scorecard(tmp_path/'s.json').table(), t)
    with pytest.raises(ValueError, match='evaluations must be a non-empty dict'): scorecard({})
