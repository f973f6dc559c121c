"Shared pytest setup: one CPU thread (trainings run beside the tests) and a non-interactive matplotlib backend."
import os
from pathlib import Path
os.environ['MPLBACKEND'] = 'Agg'
os.environ.setdefault('OMP_NUM_THREADS', '1')
import pytest
import torch
torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _one_thread_per_test():
    "Each test ends on the thread count it started with: an in-process `cli.main` sets the process's (--threads, default every core)."
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

class Payload:
    "A crafted pickle: unpickling it runs a shell command that creates `marker` (what safe loading must refuse)."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f"touch '{self.marker}'",))

def tiny_generator(kind:str='vae', latent_dim:int=4, width:int=8, seed:int=0, **kw):
    "A small untrained AE, VAE or WGAN generator in eval mode with frozen weights (tests that need no training)."
    from genprior_nb.pretrained import MODEL_CLASSES
    torch.manual_seed(seed)
    return MODEL_CLASSES[kind](latent_dim, width, **kw).eval().requires_grad_(False)

@pytest.fixture(scope='module')
def vae():
    "A small untrained VAE (latent 8, width 16), frozen: a generator for analysis tests that need no training."
    return tiny_generator('vae', 8, 16)

@pytest.fixture(scope='module')
def tiny_ae():
    "A small untrained AE (latent 8, width 8), frozen."
    return tiny_generator('ae', 8, 8)


# --browser: run the tests marked `browser` (headless Chromium, see tests/test_docs.py). Without it they are
# deselected, so a normal run neither runs nor skips them.
def pytest_addoption(parser):
    parser.addoption('--browser', action='store_true', default=False,
                     help='also run the tests marked browser (needs /usr/bin/chromium, chromedriver and selenium)')
    parser.addoption('--interop', action='store_true', default=False,
                     help='collect tests/interop/ (needs deepinv: its own venv, `bash run.sh interop-test`)')

# tests/interop/ runs against the real deepinv in .venv-interop (`bash run.sh interop-test` passes --interop). Without
# the option the folder is not collected at all, so the main run neither runs nor skips it.
def pytest_ignore_collect(collection_path, config):
    if collection_path.name == 'interop' and collection_path.parent == Path(__file__).parent and not config.getoption('--interop'):
        return True

def pytest_configure(config):
    config.addinivalue_line('markers', 'browser: needs headless Chromium; runs only with --browser')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--browser'): return
    drop = [i for i in items if i.get_closest_marker('browser')]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if not i.get_closest_marker('browser')]

@pytest.fixture(scope='module')
def chromium(tmp_path_factory):
    """Headless Debian Chromium through Selenium (tests marked `browser`). The driver path is given, so Selenium Manager
    never runs (it would download a driver); no host name resolves, so the pages under test cannot use the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--disable-dev-shm-usage', '--window-size=1280,900', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
              f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    drv = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
    drv.set_page_load_timeout(60)
    try: yield drv
    finally: drv.quit()
