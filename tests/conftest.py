"Shared pytest setup: one CPU thread (trainings run beside the tests) and a non-interactive matplotlib backend."
import os
os.environ['MPLBACKEND'] = 'Agg'
os.environ.setdefault('OMP_NUM_THREADS', '1')
import pytest
import torch
torch.set_num_threads(1)

@pytest.fixture(scope='module')
def vae():
    "A small untrained VAE (latent 8, width 16), frozen: a generator for analysis tests that need no training."
    from genprior_nb.vae import VAE
    torch.manual_seed(0)
    return VAE(8, width=16).eval().requires_grad_(False)


# --browser: run the tests marked `browser` (headless Chromium, see tests/test_docs.py). Without it they are
# deselected, so a normal run neither runs nor skips them.
def pytest_addoption(parser):
    parser.addoption('--browser', action='store_true', default=False,
                     help='also run the tests marked browser (needs /usr/bin/chromium, chromedriver and selenium)')

def pytest_configure(config):
    config.addinivalue_line('markers', 'browser: needs headless Chromium; runs only with --browser')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--browser'): return
    drop = [i for i in items if i.get_closest_marker('browser')]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if not i.get_closest_marker('browser')]
