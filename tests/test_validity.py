"The validity analysis (nbs/23_validity.ipynb): Spearman and bootstrap against scipy, the predictors, and the family manifest."
import json, math, shlex
from pathlib import Path
import numpy as np
import pytest
from scipy import stats
from genprior_nb.validity import (spearman, bootstrap_spearman, loo_predictions, fit_predictor, predict, predict_quality,
                                  family_members, criteria_rows, oriented, FAMILY_STEPS, FAMILY_TRAIN, _jsonable, _ridge)

RESULTS = Path(__file__).resolve().parents[1]/'nbs'/'benchmarks'/'validity'
X_FIX = np.array([0.3, 1.2, 1.2, -0.7, 2.5, 0.0, 0.9, 4.1, -1.3, 1.2])   # ties included
Y_FIX = np.array([17.1, 19.4, 18.2, 16.0, 21.3, 18.2, 18.9, 20.2, 15.5, 19.0])

@pytest.mark.parametrize('x,y', [(X_FIX, Y_FIX), (X_FIX, -Y_FIX), (np.arange(6.), np.array([3., 1, 2, 6, 5, 4])), (X_FIX, X_FIX**3)])
def test_spearman_matches_scipy(x, y):
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)

def test_spearman_vectorised_rows_match_scipy():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, (5, 9)).astype(float)   # many ties
    y = rng.normal(size=9)
    got = spearman(X, y)
    want = [stats.spearmanr(r, y)[0] for r in X]
    np.testing.assert_allclose(got, want, atol=1e-12)

def test_spearman_constant_is_nan_and_bad_shapes_refused():
    assert math.isnan(spearman(np.ones(5), np.arange(5.)))
    with pytest.raises(ValueError, match='same last axis'): spearman(np.arange(5.), np.arange(4.))
    with pytest.raises(ValueError, match='at least 2 values'): spearman(np.arange(1.), np.arange(1.))

def _fixed_family():
    rng = np.random.default_rng(7)
    Y = rng.normal(18, 1.5, (8, 30)) + np.linspace(0, 2, 8)[:, None]   # (G, N) per-image PSNR
    return np.linspace(0, 1, 8) + rng.normal(0, 0.2, 8), Y

def test_bootstrap_replicates_are_scipy_spearman_of_the_same_resamples():
    x, Y = _fixed_family()
    bs = bootstrap_spearman(x, Y, n_boot=50, resample='both', seed=11)
    rng = np.random.default_rng(11)   # the draws, in the order the function makes them: generators, then image counts
    gi = rng.integers(0, 8, (50, 8)); w = rng.multinomial(30, np.full(30, 1 / 30), size=50)
    for b in (0, 17, 49):
        ymean = (w[b] @ Y.T) / 30
        assert bs['replicates'][b] == pytest.approx(stats.spearmanr(x[gi[b]], ymean[gi[b]])[0], abs=1e-12)
    assert bs['rho'] == pytest.approx(stats.spearmanr(x, Y.mean(1))[0], abs=1e-12)

def test_bootstrap_interval_matches_scipy_bootstrap():
    x, Y = _fixed_family()
    y = Y.mean(1)
    ours = bootstrap_spearman(x, Y, n_boot=4000, resample='generators', seed=0)
    ref = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b)[0], paired=True, vectorized=False, n_resamples=4000,
                          method='percentile', random_state=0).confidence_interval
    assert ours['lo'] == pytest.approx(ref.low, abs=0.06) and ours['hi'] == pytest.approx(ref.high, abs=0.06)
    ours = bootstrap_spearman(x, Y, n_boot=2000, resample='images', seed=0)   # images: scipy resampling the image indices
    ref = stats.bootstrap((np.arange(30),), lambda i: stats.spearmanr(x, Y[:, i].mean(1))[0], vectorized=False, n_resamples=2000,
                          method='percentile', random_state=0).confidence_interval
    assert ours['lo'] == pytest.approx(ref.low, abs=0.06) and ours['hi'] == pytest.approx(ref.high, abs=0.06)

def test_bootstrap_refuses_bad_input():
    x, Y = _fixed_family()
    with pytest.raises(ValueError, match="resample must be one of"): bootstrap_spearman(x, Y, resample='rows')
    with pytest.raises(ValueError, match='x has 7 generators, y has 8'): bootstrap_spearman(x[:7], Y)
    with pytest.raises(ValueError, match=r'y must be per-image values \(G, N\)'): bootstrap_spearman(x, Y.mean(1))
    with pytest.raises(ValueError, match='at least 3 generators'): bootstrap_spearman(x[:2], Y[:2])

def test_ridge_loo_shortcut_equals_refitting():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 10)); y = rng.normal(size=10)
    Z = ((X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)).T
    _, e = _ridge(Z, y, 3.0)
    for g in range(10):
        k = np.arange(10) != g; Zk = Z[k] - Z[k].mean(0)
        w = np.linalg.solve(Zk.T @ Zk + 3.0 * np.eye(4), Zk.T @ (y[k] - y[k].mean()))
        assert e[g] == pytest.approx(y[g] - y[k].mean() - (Z[g] - Z[k].mean(0)) @ w, abs=1e-9)

def test_loo_never_sees_the_held_out_generator():
    X = np.array([[0., 1, 2, 3, 4, 5]]); y = np.array([10., 11, 12, 13, 14, 100.])   # the last generator is an outlier
    p, _ = loo_predictions(X, y, 'single')
    assert p[-1] == pytest.approx(15.0)   # the line through the others, extrapolated: not its own 100
    pm, _ = loo_predictions(X, y, 'mean')
    assert pm[0] == pytest.approx(np.mean(y[1:]))

@pytest.mark.parametrize('kind', ['single', 'ridge', 'mean'])
def test_predict_quality_applies_the_stored_fit_exactly(kind):
    "The JSON form `genprior score` reads predicts the same as the fitted predictor in memory."
    rows = [r for r in criteria_rows() if r[0] in ('repr_psnr', 'p_best_1', 'fd', 'z_norm_ratio')]
    rng = np.random.default_rng(2)
    evals = [dict(repr_psnr=rng.uniform(15, 22), p_best_1=rng.uniform(0.2, 1), fd=rng.uniform(10, 90), z_norm_ratio=rng.uniform(0.7, 3))
             for _ in range(9)]
    X = np.array([[oriented(k, e[k], b) for e in evals] for k, _, b in rows])
    y = 2 + 0.9 * X[0] + rng.normal(0, 0.2, 9)
    fit = fit_predictor(X, y, kind)
    crit, params = _jsonable(fit, rows)
    table = [dict(operator='cs', level=50.0, method='csgm', kind=kind, criteria=json.dumps(crit), params=json.dumps(params), generators=9,
                  loo_rmse=0.3, loo_rho=0.9, mean_rmse=1.0, psnr_min=15.0, psnr_max=22.0)]
    new = dict(repr_psnr=19.0, p_best_1=0.5, fd=30.0, z_norm_ratio=1.3)
    x_new = np.array([oriented(k, new[k], b) for k, _, b in rows])
    got = predict_quality(new, table)[0]
    assert got['predicted'] == pytest.approx(predict(fit, x_new), abs=1e-9) and got['pm'] == 0.3

def test_predict_quality_reads_a_censored_s50_as_the_next_batch_size():
    "A generator whose birthday sweep found no duplicate gets the value the family's censored members were fitted with, not NaN."
    rows = [r for r in criteria_rows() if r[0] in ('s50', 'repr_psnr')]
    rng = np.random.default_rng(3)
    evals = [dict(repr_psnr=rng.uniform(15, 22), s50=float(rng.choice([64, 128, 512, 1024]))) for _ in range(8)]
    X = np.array([[oriented(k, e[k], b) for e in evals] for k, _, b in rows])
    fit = fit_predictor(X, 1 + X.sum(0) + rng.normal(0, 0.1, 8), 'ridge')
    crit, params = _jsonable(fit, rows)
    table = [dict(operator='cs', level=50.0, method='csgm', kind='ridge', criteria=json.dumps(crit), params=json.dumps(params), generators=8,
                  loo_rmse=0.3, loo_rho=0.9, mean_rmse=1.0, psnr_min=15.0, psnr_max=22.0)]
    censored = predict_quality(dict(repr_psnr=19.0, s50=None, s50_above=2048), table)[0]['predicted']
    measured = predict_quality(dict(repr_psnr=19.0, s50=2048 * math.sqrt(2)), table)[0]['predicted']
    assert math.isfinite(censored) and censored == pytest.approx(measured, abs=1e-12)
    assert math.isnan(predict_quality(dict(repr_psnr=19.0, s50=None), table)[0]['predicted'])   # unknown, not censored: no prediction

def test_family_commands_parse_to_their_members():
    from genprior_nb.cli import build_parser, _train_args, model_config
    fam = family_members()
    assert len(fam) >= 12 and len({m['name'] for m in fam}) == len(fam)
    assert {m['latent_dim'] for m in fam if m['model'] == 'vae'} >= {2, 4, 8, 16, 32}
    assert {m['latent_dim'] for m in fam if m['model'] == 'wgan'} >= {2, 4, 8, 16, 32}
    for m in fam:
        argv = shlex.split(m['command'])
        kw = _train_args(build_parser().parse_args(argv[1:]))
        assert (kw['model'], kw['latent_dim'], kw['width'], kw['steps'], kw['stop_at']) == \
               (m['model'], m['latent_dim'], FAMILY_TRAIN['width'], FAMILY_STEPS[m['model']], m['stop_at'])
        assert Path(kw['out']).name == m['name']
        model_config(kw['model'], kw['latent_dim'], kw['width'], kw['kl_weight'], kw['likelihood'])   # a valid architecture

def test_manifest_commands_match_the_stored_configs():
    "Every trained member in the manifest: its command parses to the config and training settings its train.json recorded."
    from genprior_nb.core import read_csv
    from genprior_nb.cli import build_parser, _train_args, model_config
    rows = read_csv(RESULTS/'manifest.csv')
    assert rows, 'the manifest lists no trained generator'
    code = {m['name']: m['command'] for m in family_members()}
    for r in rows:
        assert r['command'] == code[r['name']]   # the manifest and the family defined in code agree
        kw = _train_args(build_parser().parse_args(shlex.split(r['command'])[1:]))
        assert model_config(kw['model'], kw['latent_dim'], kw['width'], kw['kl_weight'], kw['likelihood']) == json.loads(r['config'])
        t = json.loads(r['train_settings'])
        lr = kw['lr'] or (1e-4 if kw['model'] == 'wgan' else 2e-3)
        assert (t['steps'], t['stop_at'], t['batch_size'], t['seed'], t['lr']) == (kw['steps'], kw['stop_at'], kw['batch_size'], kw['seed'], lr)
        assert r['steps_done'] == (kw['stop_at'] or kw['steps'])
        if kw['model'] == 'wgan': assert (t['critic_width'], t['n_critic'], t['gp_weight']) == (kw['critic_width'], kw['n_critic'], kw['gp_weight'])

def _tiny_run(tmp_path):
    "A model folder as `genprior train` writes it (model.pt + train.json), holding a tiny untrained VAE."
    import torch
    from conftest import tiny_generator
    G = tiny_generator('vae', 4, 8)
    torch.save(G.state_dict(), tmp_path/'model.pt')
    (tmp_path/'train.json').write_text(json.dumps({'config': G.config(), 'data': 'fmnist'}))
    return tmp_path

def test_score_generator_predicts_only_what_the_fit_covers(tmp_path):
    from genprior_nb.validity import score_generator, score_report
    run = _tiny_run(tmp_path)
    quick = dict(n_images=2, restarts=1, steps=2, n_recovery=1, samples=False, progress=False)
    r = score_generator(run, data='shapes', **quick)
    assert r['predictions'] is None and 'fitted on Fashion-MNIST 28x28' in r['note']
    assert r['evaluation']['dataset'] == 'shapes' and 'representation PSNR' in score_report(r)
    r = score_generator(run, **quick)   # the model's own training data (fmnist), but not the default sizes
    assert r['predictions'] is None and r['note'].startswith("no prediction: the predictors assume evaluate_generator's default sizes")
    with pytest.raises(ValueError, match="source must be a shipped model .* got 'no-such-model'"): score_generator('no-such-model')
    (run/'train.json').write_text(json.dumps({'config': json.loads((run/'train.json').read_text())['config']}))   # no record of its data
    with pytest.raises(ValueError, match="data must be given for .*: it has no train.json that names its training data"): score_generator(run, **quick)

def test_outside_family_compares_with_members_of_the_same_type():
    from genprior_nb.validity import outside_family
    fam = [dict(name=f'g{i}', model='wgan' if i < 4 else 'vae', latent_dim=8, recall=0.1 + 0.02 * i, fd=20.0 + i) for i in range(8)]
    got = outside_family(dict(recall=0.3, fd=21.0), 'wgan', fam)
    assert [(r['criterion'], r['value'], r['lo'], r['hi'], r['members'], r['model']) for r in got] == [('recall', 0.3, 0.1, 0.16, 4, 'wgan')]
    assert {r['criterion'] for r in outside_family(dict(recall=0.3, fd=21.0), 'vae', fam)} == {'recall', 'fd'}   # the VAEs: 0.18-0.24, 24-27
    whole = outside_family(dict(recall=0.3, fd=21.0), 'ae', fam)   # fewer than 3 AEs: the whole family's range
    assert [(r['criterion'], r['label'], r['members'], r['model']) for r in whole] == [('recall', 'recall (k=3)', 8, None)]
    assert whole[0]['hi'] == pytest.approx(0.24) and whole[0]['lo'] == pytest.approx(0.1)
    assert outside_family(dict(recall=None, fd=21.0), 'wgan', fam) == []   # an unknown value is no finding

def test_shipped_family_flags_the_shipped_wgan_and_not_the_vae():
    "The stored family criteria: the shipped WGAN-GP samples better than every family WGAN-GP (recall, FD), the shipped VAE sits inside the VAEs' range on them."
    from genprior_nb.validity import outside_family
    sc = json.loads((RESULTS.parent/'scorecard.json').read_text())
    flagged = {r['criterion'] for r in outside_family(sc['wgan-fmnist-8'], 'wgan')}
    assert {'recall', 'fd'} <= flagged and 'repr_psnr' not in flagged
    assert not {'recall', 'fd', 'repr_psnr'} & {r['criterion'] for r in outside_family(sc['vae-fmnist-8'], 'vae')}

def test_model_type_and_the_report_of_a_generator_outside_the_family(tiny_ae):
    from genprior_nb.validity import model_type, score_report
    from conftest import tiny_generator
    assert (model_type(tiny_ae), model_type(tiny_generator('vae', 4, 8)), model_type(tiny_generator('wgan', 4, 8))) == ('ae', 'vae', 'wgan')
    import torch
    assert model_type(torch.nn.Linear(2, 2)) is None
    res = dict(name='G', data='fmnist', evaluation=dict(recall=0.3), predictions=None, note=None,
               outside=[dict(criterion='recall', label='recall (k=3)', value=0.3, lo=0.1, hi=0.16, members=4, model='wgan')])
    text = score_report(res)
    assert "outside the range of the family's 4 WGAN-GPs on 1 criteria, where the predictors extrapolate" in text
    assert text.splitlines()[-1].split() == ['recall', '(k=3)', '0.3', '(family', '0.1', 'to', '0.16)']

def test_stored_members_are_skipped_and_keep_their_manifest_rows(tmp_path):
    "A member whose score, every reconstruction row and manifest row are stored is not run again, even with its run folder gone."
    import shutil
    from genprior_nb.core import read_csv, write_csv
    from genprior_nb.validity import member_stored, run_family, recon_cells, N_RECON, MANIFEST_COLUMNS
    res = tmp_path/'results'
    for sub in ('scores', 'recon'): (res/sub).mkdir(parents=True)
    name = 'vae-k8'
    shutil.copy(RESULTS/'scores'/f'{name}.json', res/'scores'); shutil.copy(RESULTS/'recon'/f'{name}.csv', res/'recon')
    row = next(r for r in read_csv(RESULTS/'manifest.csv') if r['name'] == name)
    write_csv(res/'manifest.csv', [row], MANIFEST_COLUMNS)
    rows = read_csv(res/'recon'/f'{name}.csv')
    assert len(rows) == len(recon_cells(name)) * N_RECON and member_stored(name, res)
    before = (res/'manifest.csv').read_text()
    # no run folder at all: run_family must neither train nor drop the stored row
    assert run_family(tmp_path/'runs', res, [name], recon=True) == []
    assert not (tmp_path/'runs').exists() and (res/'manifest.csv').read_text() == before
    write_csv(res/'recon'/f'{name}.csv', rows[:-1], list(rows[0]))   # one reconstruction row missing: not stored
    assert not member_stored(name, res)
    assert not member_stored('wgan-k2', res)   # nothing stored for it

def test_score_generator_adds_the_criteria_outside_the_family(monkeypatch):
    "With the default sizes and the shipped fit, `score_generator` predicts and lists where the model leaves its type's range (evaluation stubbed by the stored one)."
    import genprior_nb.scorecard as scorecard_module
    from genprior_nb.validity import score_generator, score_report
    stored = json.loads((RESULTS.parent/'scorecard.json').read_text())['wgan-fmnist-8']
    monkeypatch.setattr(scorecard_module, 'evaluate_generator', lambda G, test, progress=True, **kw: stored)
    r = score_generator('wgan-fmnist-8', progress=False)
    assert len(r['predictions']) == 14 and {'recall', 'fd'} <= {o['criterion'] for o in r['outside']}
    assert all(o['model'] == 'wgan' and o['members'] == 8 for o in r['outside'])
    assert "outside the range of the family's 8 WGAN-GPs" in score_report(r)
