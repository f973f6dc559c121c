"""Fit the reconstruction-quality predictors of `genprior score` on the stored validity family and save its figures.

    python scripts/validity_fit.py

Reads nbs/benchmarks/validity/ (written by scripts/validity_run.py), writes genprior_nb/tuning/validity_fit.csv (package
data: the predictor of each target problem and method, with its leave-one-generator-out error) and
genprior_nb/tuning/validity_family.csv (package data: every member's criteria, for `outside_family`),
nbs/benchmarks/validity/correlations.csv, the weights of STORED_WEIGHTS and the figures under nbs/benchmarks/validity/figures/. Seconds.
"""
from pathlib import Path
from genprior_nb.core import write_csv, set_cpu_threads
from genprior_nb.data import save_figure
from genprior_nb.bench_settings import TUNING_DIR
from genprior_nb.validity import (load_results, fit_family, correlation_table, plot_predicted_vs_actual, plot_tradeoff,
                                  store_weights, family_criteria, criteria_rows, FIT_COLUMNS, VALIDITY_METHODS)

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT/'nbs'/'benchmarks'/'validity'
CORR_COLUMNS = ('operator', 'level', 'method', 'criterion', 'label', 'generators', 'images', 'rho', 'lo', 'hi', 'fraction')

if __name__ == '__main__':
    set_cpu_threads(1)
    for p in store_weights(ROOT/'runs'/'validity', RES): print('->', p)
    res = load_results(RES)
    fit = fit_family(res)
    if not fit: raise SystemExit('fewer than 5 generators with reconstruction results: nothing to fit yet')
    print('->', write_csv(TUNING_DIR/'validity_fit.csv', fit, FIT_COLUMNS))
    print('->', write_csv(TUNING_DIR/'validity_family.csv', family_criteria(res), ('name', 'model', 'latent_dim', *(k for k, _, _ in criteria_rows()))))
    print('->', write_csv(RES/'correlations.csv', correlation_table(res), CORR_COLUMNS))
    for m in VALIDITY_METHODS: print('->', save_figure(plot_predicted_vs_actual(res, m), RES/'figures'/f'predicted_vs_actual_{m}.png'))
    print('->', save_figure(plot_tradeoff(res), RES/'figures'/'latent_tradeoff.png'))
    for r in fit: print(f"{r['operator']:8s} {r['level']:6g} {r['method']:19s} {r['kind']:6s} LOO RMSE {r['loo_rmse']:.2f} dB "
                        f"(family mean {r['mean_rmse']:.2f}) over {r['generators']} generators")
