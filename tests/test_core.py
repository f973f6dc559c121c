"Tests of genprior_nb.core: argument checks, devices, seeds, threads, atomic saves and pickle-free loading."
import os, gzip, pickle, hashlib, random
import numpy as np
import pytest
import torch
from conftest import Payload
import fastcore.test as fct

import genprior_nb.core as core
from genprior_nb.core import (check_int, check_float, check_choice, check_images, get_device, seed_everything,
                              set_cpu_threads, atomic_write_bytes, atomic_torch_save, safe_torch_load,
                              UnsafeCheckpointError, md5sum)


def msg_of(exc_type, f, *args, **kw):
    "Call f and return the message of the exception of type `exc_type` it must raise."
    with pytest.raises(exc_type) as e: f(*args, **kw)
    return str(e.value)

# ---------------------------------------------------------------- check_* helpers

def test_check_int_accepts_and_converts():
    fct.test_eq(check_int(3, 'n'), 3)
    r = check_int(np.int64(7), 'n', 0, 10)
    fct.test_eq(r, 7); assert type(r) is int
    fct.test_eq(check_int(0, 'n', 0, 0), 0)

def test_check_int_messages():
    fct.test_eq(msg_of(TypeError, check_int, True, 'flag'), "flag must be an integer, got bool True")
    fct.test_eq(msg_of(TypeError, check_int, 3.0, 'steps'), "steps must be an integer, got float 3.0")
    fct.test_eq(msg_of(TypeError, check_int, '3', 'steps'), "steps must be an integer, got str '3'")
    fct.test_eq(msg_of(ValueError, check_int, 5, 'n', 0, 3), "n must be an integer in [0, 3], got 5")
    fct.test_eq(msg_of(ValueError, check_int, 0, 'restarts', 1), "restarts must be an integer in [1, inf], got 0")
    fct.test_eq(msg_of(ValueError, check_int, 11, 'k', None, 10), "k must be an integer in [-inf, 10], got 11")

def test_check_float_accepts():
    r = check_float(1, 'lr', 0, lo_open=True)
    fct.test_eq(r, 1.0); assert type(r) is float
    fct.test_eq(check_float(np.float32(0.5), 'p', 0, 1), 0.5)
    fct.test_eq(check_float(0, 'p', 0, 1), 0.0)   # closed bounds include the ends
    fct.test_eq(check_float(1, 'p', 0, 1), 1.0)

def test_check_float_messages():
    fct.test_eq(msg_of(TypeError, check_float, False, 'lr'), "lr must be a real number, got bool False")
    fct.test_eq(msg_of(TypeError, check_float, 'a', 'lr'), "lr must be a real number, got str 'a'")
    fct.test_eq(msg_of(ValueError, check_float, 0, 'lr', 0, lo_open=True), "lr must be a finite number in (0, inf], got 0")
    fct.test_eq(msg_of(ValueError, check_float, 1.0, 'keep', 0, 1, hi_open=True), "keep must be a finite number in [0, 1), got 1.0")
    fct.test_eq(msg_of(ValueError, check_float, -0.5, 'w', 0), "w must be a finite number in [0, inf], got -0.5")
    fct.test_eq(msg_of(ValueError, check_float, float('nan'), 'sigma'), "sigma must be a finite number in [-inf, inf], got nan")
    fct.test_eq(msg_of(ValueError, check_float, float('inf'), 'sigma'), "sigma must be a finite number in [-inf, inf], got inf")

def test_check_choice():
    fct.test_eq(check_choice('test', 'split', ('train', 'test')), 'test')
    fct.test_eq(msg_of(ValueError, check_choice, 'val', 'split', ('train', 'test')),
                "split must be one of ['test', 'train'], got 'val'")

def test_check_images():
    x = torch.rand(2, 1, 4, 4)
    assert check_images(x) is x
    assert check_images(torch.zeros(0, 1, 4, 4), allow_empty=True).shape[0] == 0
    fct.test_eq(msg_of(TypeError, check_images, [1, 2], 'x'), "x must be a torch.Tensor of shape (B, C, H, W), got list")
    fct.test_eq(msg_of(ValueError, check_images, torch.rand(1, 4, 4), 'img'), "img must be a 4-D tensor (B, C, H, W), got shape (1, 4, 4)")
    fct.test_eq(msg_of(TypeError, check_images, torch.zeros(1, 1, 4, 4, dtype=torch.uint8)), "x must have a floating-point dtype, got torch.uint8")
    fct.test_eq(msg_of(ValueError, check_images, x, 'x', (1, 28, 28)), "x must have image shape (C, H, W) = (1, 28, 28), got (1, 4, 4)")
    fct.test_eq(msg_of(ValueError, check_images, torch.zeros(0, 1, 4, 4)), "x is an empty batch (B = 0)")
    bad = x.clone(); bad[1, 0, 2, 2] = float('nan')
    fct.test_eq(msg_of(ValueError, check_images, bad), "x contains NaN or inf values")
    bad[1, 0, 2, 2] = float('-inf')
    fct.test_eq(msg_of(ValueError, check_images, bad), "x contains NaN or inf values")

# ---------------------------------------------------------------- devices, seeds, threads

def test_get_device():
    fct.test_eq(get_device('cpu'), torch.device('cpu'))
    fct.test_eq(get_device(torch.device('cpu')), torch.device('cpu'))
    assert isinstance(get_device(), torch.device)
    if not torch.cuda.is_available() and not torch.backends.mps.is_available(): fct.test_eq(get_device(), torch.device('cpu'))
    fct.test_eq(msg_of(TypeError, get_device, 0), "device must be a str or torch.device, got int")

def _draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3)

def test_seed_everything_reproducible():
    g1 = seed_everything(123); a = _draws(); ga = torch.rand(4, generator=g1)
    g2 = seed_everything(123); b = _draws(); gb = torch.rand(4, generator=g2)
    fct.test_eq(a[0], b[0]); fct.test_eq(a[1], b[1]); assert torch.equal(a[2], b[2]); assert torch.equal(ga, gb)
    seed_everything(124); c = _draws()
    assert a[0] != c[0] and a[1] != c[1] and not torch.equal(a[2], c[2])
    assert isinstance(g1, torch.Generator)
    with pytest.raises(ValueError): seed_everything(-1)
    with pytest.raises(TypeError): seed_everything(1.5)

def test_set_cpu_threads():
    try:
        fct.test_eq(set_cpu_threads(1), 1); fct.test_eq(torch.get_num_threads(), 1)
        fct.test_eq(set_cpu_threads(10_000), os.cpu_count())   # capped at the cores present
    finally: torch.set_num_threads(1)

# ---------------------------------------------------------------- atomic saves

def _no_tmp(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith('.tmp')]

def test_atomic_torch_save_round_trip_exact(tmp_path):
    g = torch.Generator().manual_seed(0)
    obj = {'w': torch.randn(5, 3, generator=g), 'half': torch.randn(4, generator=g).half(),
           'ints': torch.arange(7, dtype=torch.int64), 'mask': torch.rand(6, generator=g) > 0.5,
           'nested': [{'a': 1, 'b': 2.5, 'c': 'text'}, (torch.tensor(3.25), None)], 'step': 42}
    p = atomic_torch_save(obj, tmp_path/'sub'/'ck.pt')   # creates the parent folder
    fct.test_eq(p, tmp_path/'sub'/'ck.pt')
    back = safe_torch_load(p)
    fct.test_eq(set(back), set(obj))
    for k in ('w', 'half', 'ints', 'mask'):
        fct.test_eq(back[k].dtype, obj[k].dtype); assert torch.equal(back[k], obj[k])
    fct.test_eq(back['nested'][0], obj['nested'][0]); assert torch.equal(back['nested'][1][0], obj['nested'][1][0])
    assert back['nested'][1][1] is None
    fct.test_eq(back['step'], 42)
    fct.test_eq(_no_tmp(tmp_path/'sub'), [])
    # overwriting keeps one file, no leftovers
    atomic_torch_save({'step': 43}, p)
    fct.test_eq(safe_torch_load(p), {'step': 43})
    fct.test_eq(sorted(x.name for x in (tmp_path/'sub').iterdir()), ['ck.pt'])

def test_atomic_write_failure_keeps_old_file_and_no_tmp(tmp_path, monkeypatch):
    p = tmp_path/'f.bin'; atomic_write_bytes(p, b'old')
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(core.os, 'replace', boom)
    with pytest.raises(OSError, match='disk full'): atomic_write_bytes(p, b'new content')
    monkeypatch.undo()
    fct.test_eq(p.read_bytes(), b'old')
    fct.test_eq(_no_tmp(tmp_path), [])
    fct.test_eq(sorted(x.name for x in tmp_path.iterdir()), ['f.bin'])

# ---------------------------------------------------------------- safe loading


def test_payload_is_live(tmp_path):
    "Control: plain unpickling of the payload does run the command, so the refusal test below is meaningful."
    marker = tmp_path/'control_marker'
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()

@pytest.mark.parametrize('fmt', ['torch_zip', 'raw_pickle'])
def test_malicious_pickle_refused(tmp_path, fmt):
    marker = tmp_path/'pwned'
    p = tmp_path/'evil.pt'
    payload = {'weights': torch.zeros(2), 'evil': Payload(marker)}
    if fmt == 'torch_zip': torch.save(payload, p)
    else: p.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeCheckpointError) as e: safe_torch_load(p)
    assert str(p) in str(e.value)
    assert not marker.exists(), "the pickled command ran while loading"

def test_non_tensor_object_refused(tmp_path):
    p = tmp_path/'obj.pt'
    torch.save({'a': torch.zeros(1), 'gen': np.random.default_rng(0)}, p)
    with pytest.raises(UnsafeCheckpointError, match='refused to load'): safe_torch_load(p)

def test_truncated_and_garbage_checkpoints_refused(tmp_path):
    good = tmp_path/'good.pt'
    atomic_torch_save({'w': torch.randn(100, 100)}, good)
    data = good.read_bytes()
    for name, content in [('trunc.pt', data[:len(data)//2]), ('short.pt', data[:10]), ('garbage.pt', b'not a checkpoint' * 10),
                          ('empty.pt', b'')]:
        p = tmp_path/name; p.write_bytes(content)
        with pytest.raises(UnsafeCheckpointError) as e: safe_torch_load(p)
        assert str(p) in str(e.value), e.value
    # the message of a truncated file says so
    with pytest.raises(UnsafeCheckpointError, match='truncated or corrupt'): safe_torch_load(tmp_path/'trunc.pt')
    with pytest.raises(ValueError, match='truncated or corrupt'): safe_torch_load(tmp_path/'trunc.pt')  # callers may catch ValueError

def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'): safe_torch_load(tmp_path/'nope.pt')

def test_md5sum(tmp_path):
    data = os.urandom(3_000_000)
    p = tmp_path/'a.bin'; p.write_bytes(data)
    fct.test_eq(md5sum(p), hashlib.md5(data).hexdigest())
    fct.test_eq(md5sum(data), hashlib.md5(data).hexdigest())
    gz = tmp_path/'a.bin.gz'; gz.write_bytes(gzip.compress(data))
    fct.test_eq(md5sum(gz, gunzip=True), hashlib.md5(data).hexdigest())
    fct.test_eq(md5sum(gz.read_bytes(), gunzip=True), hashlib.md5(data).hexdigest())
    fct.test_ne(md5sum(gz), hashlib.md5(data).hexdigest())

def test_cache_unless_compiling_caches_eager_calls_and_compiles_without_dynamo_warnings():
    import warnings
    from genprior_nb.core import cache_unless_compiling
    from genprior_nb.baselines import dct_matrix, haar2, ihaar2
    built = []
    @cache_unless_compiling(2)
    def table(n): built.append(n); return torch.arange(float(n))
    table(3); table(3); table(4)
    assert built == [3, 4] and table.cache_info().hits == 1 and table.__name__ == 'table'
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    f = torch.compile(lambda v: ihaar2(haar2(v, 2), 2) + dct_matrix(8)[0, 0], backend='eager', fullgraph=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        y = f(x)
    assert not [w for w in caught if 'lru_cache' in str(w.message)], [str(w.message) for w in caught]
    torch.testing.assert_close(y, x + dct_matrix(8)[0, 0], atol=1e-6, rtol=0)
    torch._dynamo.reset()
