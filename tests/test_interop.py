"""genprior_nb.interop without deepinv (the main venv): nothing imports deepinv, and the adapters say how to get it.

The adapters themselves are tested against the real deepinv in tests/interop/ (`bash run.sh interop-test`).
"""
import subprocess, sys
import pytest
import torch
from genprior_nb import interop
from genprior_nb.generators import LinearGenerator
from genprior_nb.operators import make_operator

def test_no_module_imports_deepinv_or_torchvision():
    code = ("import importlib, pkgutil, sys, genprior_nb\n"
            "mods = [m.name for m in pkgutil.iter_modules(genprior_nb.__path__, 'genprior_nb.') if not m.ispkg]\n"
            "for m in mods: importlib.import_module(m)\n"
            "assert 'genprior_nb.interop' in mods and len(mods) > 15, mods\n"
            "print(sorted(k for k in ('deepinv', 'torchvision') if k in sys.modules))\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == '[]'

@pytest.fixture
def no_deepinv(monkeypatch):
    "A venv without deepinv, whatever this one has."
    monkeypatch.setitem(sys.modules, 'deepinv', None)

def test_adapters_without_deepinv_say_how_to_install_it(no_deepinv):
    assert not interop.deepinv_available()
    with pytest.raises(ImportError, match=r'this adapter needs deepinv \(>= 0.5\): pip install "genprior_nb\[deepinv\]"'):
        interop.from_deepinv(object())
    with pytest.raises(ImportError, match=r'genprior_nb\[deepinv\]'): interop.to_deepinv(make_operator('denoise'))
    for name in ('GenerativeReconstructor', 'RangeProjectionPrior', 'GenpriorPhysics'):
        with pytest.raises(ImportError, match=r'genprior_nb\[deepinv\]'): getattr(interop, name)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"): interop.Nope

def test_generator_backbone_needs_no_deepinv(no_deepinv):
    G = LinearGenerator(torch.randn(64, 3, generator=torch.Generator().manual_seed(0)), (1, 8, 8))
    z = torch.randn(5, 3)
    assert torch.equal(interop.DeepinvGenerator(G)(z[:, :, None, None]), G(z))
