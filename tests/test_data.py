"Tests of genprior_nb.data: the real Fashion-MNIST files, corruption checks, search paths, IDX parsing, shapes, evaluation subset, figures."
import gzip, shutil, struct
from pathlib import Path
import pytest
import torch
import fastcore.test as fct
import matplotlib
import matplotlib.pyplot as plt

import genprior_nb.data as data
from genprior_nb.data import (CLASSES, FMNIST_FILES, INSTALL_HINT, DataFileError, fmnist_search_paths, parse_idx,
                              load_fashion_mnist, shapes_dataset, load_dataset, eval_images, show_images, save_figure)

SYSTEM = Path('/usr/share/datasets/fashion-mnist')
TEST_FILES = ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')

def _fmnist_folder():
    return next((d for d in fmnist_search_paths() if all((d/n).is_file() for n in FMNIST_FILES)), None)

needs_fmnist = pytest.mark.skipif(_fmnist_folder() is None, reason='Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)')

@pytest.fixture
def test_copy(tmp_path):
    "A private copy of the two test-split files."
    src = _fmnist_folder()
    for n in TEST_FILES: shutil.copy(src/n, tmp_path/n)
    return tmp_path

# ---------------------------------------------------------------- real files

@needs_fmnist
def test_fmnist_test_split():
    x, y = load_fashion_mnist('test')
    fct.test_eq(x.shape, (10_000, 1, 28, 28)); fct.test_eq(x.dtype, torch.float32)
    fct.test_eq(y.shape, (10_000,)); fct.test_eq(y.dtype, torch.int64)
    fct.test_eq(float(x.min()), 0.); fct.test_eq(float(x.max()), 1.)
    assert torch.equal((x*255).round()/255, x)   # 8-bit grey levels
    fct.test_eq(torch.bincount(y, minlength=10).tolist(), [1000]*10)
    fct.test_eq(len(CLASSES), 10)
    # the caller owns its tensors: editing them leaves the cache intact
    x[0] = 5; y[0] = 99
    x2, y2 = load_fashion_mnist('test')
    assert float(x2.max()) == 1. and int(y2.max()) == 9

@needs_fmnist
def test_fmnist_train_split():
    x, y = load_fashion_mnist('train')
    fct.test_eq(x.shape, (60_000, 1, 28, 28)); fct.test_eq(y.shape, (60_000,))
    fct.test_eq(torch.bincount(y, minlength=10).tolist(), [6000]*10)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    xd, yd = load_dataset('fmnist', 'train')
    assert torch.equal(xd, x) and torch.equal(yd, y)

def test_bad_split():
    with pytest.raises(ValueError, match="split must be one of"): load_fashion_mnist('val')
    with pytest.raises(ValueError, match="name must be one of"): load_dataset('mnist')

# ---------------------------------------------------------------- corrupt files

@needs_fmnist
def test_private_copy_loads(test_copy):
    x, y = load_fashion_mnist('test', path=test_copy)
    x0, y0 = load_fashion_mnist('test')
    assert torch.equal(x, x0) and torch.equal(y, y0)

@needs_fmnist
@pytest.mark.parametrize('fname', TEST_FILES)
def test_truncated_gz_rejected(test_copy, fname):
    f = test_copy/fname; b = f.read_bytes(); f.write_bytes(b[:len(b)//2])
    with pytest.raises(DataFileError) as e: load_fashion_mnist('test', path=test_copy)
    msg = str(e.value)
    assert str(f) in msg, msg
    # BUG (reported): a cut .gz file gives "not a readable gzip file (Compressed file ended before the end-of-stream
    # marker was reached)", which never says 'truncated' or 'corrupt'.
    rest = msg.replace(str(f), '').lower()   # the tmp path itself may contain the test's name
    assert 'truncated' in rest or 'corrupt' in rest, f"message does not say truncated/corrupt: {msg}"

@needs_fmnist
def test_truncated_content_rejected(test_copy):
    f = test_copy/TEST_FILES[1]
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-10], compresslevel=1))   # a valid gzip of too few bytes
    with pytest.raises(DataFileError) as e: load_fashion_mnist('test', path=test_copy)
    msg = str(e.value)
    assert str(f) in msg and 'truncated' in msg.replace(str(f), '') and '10,008' in msg, msg

@needs_fmnist
@pytest.mark.parametrize('fname,offset', [(TEST_FILES[0], 5000), (TEST_FILES[1], 100)])
def test_flipped_byte_rejected(test_copy, fname, offset):
    f = test_copy/fname
    raw = bytearray(gzip.decompress(f.read_bytes())); raw[offset] ^= 0x01
    f.write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    with pytest.raises(DataFileError) as e: load_fashion_mnist('test', path=test_copy)
    msg = str(e.value)
    assert str(f) in msg and 'corrupt' in msg.replace(str(f), '') and FMNIST_FILES[fname][1] in msg, msg

# ---------------------------------------------------------------- search paths and missing files

def test_search_paths_order(tmp_path, monkeypatch):
    monkeypatch.setenv('GENPRIOR_DATA', str(tmp_path/'env'))
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    fct.test_eq(fmnist_search_paths(tmp_path/'explicit'),
                [tmp_path/'explicit', tmp_path/'env', tmp_path/'cache'/'genprior_nb'/'fashion-mnist', SYSTEM])
    monkeypatch.delenv('GENPRIOR_DATA')
    fct.test_eq(fmnist_search_paths(), [tmp_path/'cache'/'genprior_nb'/'fashion-mnist', SYSTEM])

def _isolate(tmp_path, monkeypatch):
    "Search only inside tmp_path: the system folder is replaced by tmp_path/'system'."
    monkeypatch.setenv('GENPRIOR_DATA', str(tmp_path/'env'))
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    orig = data.fmnist_search_paths
    monkeypatch.setattr(data, 'fmnist_search_paths',
                        lambda path=None: [tmp_path/'system' if p == SYSTEM else p for p in orig(path)])
    return data.fmnist_search_paths(tmp_path/'explicit')

def test_missing_files_message(tmp_path, monkeypatch):
    searched = _isolate(tmp_path, monkeypatch)
    fct.test_eq(len(searched), 4)
    with pytest.raises(FileNotFoundError) as e: load_fashion_mnist('test', path=tmp_path/'explicit')
    msg = str(e.value)
    for p in searched: assert str(p) in msg, (p, msg)
    assert 't10k-images-idx3-ubyte.gz' in msg and 't10k-labels-idx1-ubyte.gz' in msg
    assert INSTALL_HINT in msg and 'apt-get install dataset-fashion-mnist' in msg

@needs_fmnist
def test_half_present_folder_is_skipped(tmp_path, monkeypatch):
    "A folder with only the image file does not count: the search goes on and fails."
    _isolate(tmp_path, monkeypatch)
    (tmp_path/'explicit').mkdir(); shutil.copy(_fmnist_folder()/TEST_FILES[0], tmp_path/'explicit')
    with pytest.raises(FileNotFoundError): load_fashion_mnist('test', path=tmp_path/'explicit')

@needs_fmnist
def test_env_folder_and_download_fallback(tmp_path, monkeypatch):
    _isolate(tmp_path, monkeypatch)
    src = _fmnist_folder()
    # $GENPRIOR_DATA is used
    (tmp_path/'env').mkdir()
    for n in TEST_FILES: shutil.copy(src/n, tmp_path/'env'/n)
    fct.test_eq(load_fashion_mnist('test')[0].shape, (10_000, 1, 28, 28))
    shutil.rmtree(tmp_path/'env')
    # download=True fills the user cache (the network fetch is replaced by a local copy)
    calls = []
    def fake_download(fname, folder): calls.append((fname, folder)); shutil.copy(src/fname, folder/fname)
    monkeypatch.setattr(data, '_download', fake_download)
    with pytest.raises(FileNotFoundError): load_fashion_mnist('test')
    x, y = load_fashion_mnist('test', download=True)
    cache = tmp_path/'cache'/'genprior_nb'/'fashion-mnist'
    fct.test_eq(sorted(calls), sorted((n, cache) for n in TEST_FILES))
    fct.test_eq(torch.bincount(y).tolist(), [1000]*10)

# ---------------------------------------------------------------- IDX parsing

def _idx(dims, values):
    return struct.pack('>HBB', 0, 8, len(dims)) + struct.pack(f'>{len(dims)}I', *dims) + bytes(values)

def test_parse_idx_valid():
    fct.test_eq(parse_idx(_idx([3], [1, 2, 255])).tolist(), [1, 2, 255])
    a = parse_idx(_idx([2, 2, 3], range(12)))
    fct.test_eq(a.shape, (2, 2, 3)); fct.test_eq(a.dtype.name, 'uint8'); fct.test_eq(a[1, 1, 2], 11)

def test_parse_idx_errors():
    with pytest.raises(DataFileError, match=r'f\.idx: too short to be an IDX file \(5 bytes\)'): parse_idx(b'\x00' * 5, 'f.idx')
    with pytest.raises(DataFileError, match='bad IDX magic 00000901'): parse_idx(b'\x00\x00\x09\x01' + b'\x00' * 8)
    with pytest.raises(DataFileError, match='bad IDX magic 01000801'): parse_idx(b'\x01\x00\x08\x01' + b'\x00' * 8)
    with pytest.raises(DataFileError, match='bad IDX magic 00000802'): parse_idx(_idx([2, 2], range(4)))   # 2-D not accepted
    with pytest.raises(DataFileError, match='header says 4 values, file holds 3'): parse_idx(_idx([4], [1, 2, 3]))
    with pytest.raises(DataFileError, match='header says 2 values, file holds 3'): parse_idx(_idx([2], [1, 2, 3]))
    assert issubclass(DataFileError, ValueError)

# ---------------------------------------------------------------- shapes

def test_shapes_dataset_properties():
    x = shapes_dataset(50, seed=3)
    fct.test_eq(x.shape, (50, 1, 28, 28)); fct.test_eq(x.dtype, torch.float32)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    m = x.flatten(1)
    assert (m.max(1).values >= 0.3).all(), "every image holds at least one shape of intensity >= 0.3"
    assert (m.min(1).values == 0).all(), "every image keeps some dark background"
    assert ((m > 0) & (m < 0.3)).sum() == 0, "intensities are 0 (background) or in [0.3, 1]"
    fct.test_eq(shapes_dataset(4, size=16, seed=0).shape, (4, 1, 16, 16))
    fct.test_eq(shapes_dataset(0).shape, (0, 1, 28, 28))

def test_shapes_dataset_seeded():
    a, b = shapes_dataset(20, seed=7), shapes_dataset(20, seed=7)
    assert torch.equal(a, b)
    assert torch.equal(shapes_dataset(8, seed=7), a[:8]), "image i does not depend on n"
    c = shapes_dataset(20, seed=8)
    assert not torch.equal(a, c)
    assert all(not torch.equal(a[i], c[i]) for i in range(20))
    assert len({tuple(a[i].flatten().tolist()) for i in range(20)}) == 20, "images within a set differ"

def test_shapes_dataset_bad_args():
    with pytest.raises(ValueError, match=r'n must be an integer in \[0, inf\], got -1'): shapes_dataset(-1)
    with pytest.raises(TypeError, match='n must be an integer'): shapes_dataset(2.5)
    with pytest.raises(ValueError, match='size must be an integer in'): shapes_dataset(2, size=4)
    with pytest.raises(ValueError, match='seed must be an integer in'): shapes_dataset(2, seed=-3)
    with pytest.raises(ValueError, match='max_shapes must be an integer in'): shapes_dataset(2, max_shapes=0)

def test_load_dataset_and_eval_images_shapes():
    x, y = load_dataset('shapes', 'test')
    fct.test_eq(x.shape, (10_000, 1, 28, 28)); assert (y == -1).all()
    assert torch.equal(x[:5], shapes_dataset(5, seed=1))
    xe, ye = eval_images(12, dataset='shapes')
    fct.test_eq(xe.shape, (12, 1, 28, 28)); assert (ye == -1).all()
    flat = x.flatten(1)
    hits = [int(torch.nonzero((flat == r).all(1)).flatten()[0]) for r in xe.flatten(1)]
    fct.test_eq(len(set(hits)), 12)   # distinct test images
    assert hits != list(range(12)), "a random draw, not the first images"

# ---------------------------------------------------------------- evaluation subset

@needs_fmnist
def test_eval_images_stratified_and_deterministic():
    x_test, y_test = load_fashion_mnist('test')
    x, y = eval_images(256)
    fct.test_eq(x.shape, (256, 1, 28, 28))
    # round robin over the classes: 256 = 25 * 10 + 6, so classes 0..5 get one more
    fct.test_eq(torch.bincount(y, minlength=10).tolist(), [26]*6 + [25]*4)
    fct.test_eq(torch.bincount(eval_images(100)[1], minlength=10).tolist(), [10]*10)
    x2, y2 = eval_images(256)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = eval_images(256, seed=1)
    assert not torch.equal(x, x3)
    # a prefix of a larger draw with the same seed
    assert torch.equal(eval_images(30)[0], x[:30])
    # every image is a test image with its own label, no repeats
    flat = x_test.flatten(1)
    for i in range(0, 256, 17):
        hits = torch.nonzero((flat == x[i].flatten()).all(1)).flatten()
        assert len(hits) >= 1 and int(y_test[hits[0]]) == int(y[i])
    fct.test_eq(len({tuple(r.tolist()) for r in x.flatten(1)}), 256)

@needs_fmnist
def test_eval_images_full_is_permutation():
    x, y = eval_images(10_000)
    fct.test_eq(torch.bincount(y).tolist(), [1000]*10)
    x_test = load_fashion_mnist('test')[0]
    fct.test_eq(int((x*255).round().long().sum()), int((x_test*255).round().long().sum()))

def test_eval_images_args():
    with pytest.raises(ValueError, match=r'n must be an integer in \[1, 10000\], got 0'): eval_images(0, dataset='shapes')
    with pytest.raises(ValueError, match='n must be an integer in'): eval_images(10_001, dataset='shapes')
    with pytest.raises(ValueError, match="dataset must be one of \\['ellipses', 'fmnist', 'shapes'\\], got 'mnist'"): eval_images(5, dataset='mnist')
    with pytest.raises(ValueError, match=r'n must be an integer in \[1, 2000\], got 2001'): eval_images(2001, dataset='ellipses')

# ---------------------------------------------------------------- figures

def test_show_images_returns_figure():
    x = shapes_dataset(10, seed=0)
    fig = show_images(x, nrow=4, titles=list('abcdefghij'), suptitle='t')
    assert isinstance(fig, matplotlib.figure.Figure)
    fct.test_eq(len(fig.axes), 3 * 4)   # 10 images in rows of 4
    fct.test_eq(fig.axes[0].get_title(), 'a')
    fct.test_eq(sum(len(ax.images) for ax in fig.axes), 10)
    plt.close(fig)
    fig = show_images([x[:3], x[3:5, 0]], row_labels=['r1', 'r2'])   # a list of rows, (B, H, W) allowed
    fct.test_eq(len(fig.axes), 2 * 3); fct.test_eq(fig.axes[0].get_ylabel(), 'r1')
    plt.close(fig)

def test_save_figure(tmp_path):
    fig = show_images(shapes_dataset(8, seed=0))
    p = save_figure(fig, tmp_path/'figs'/'grid.png')
    fct.test_eq(p, tmp_path/'figs'/'grid.png')
    b = p.read_bytes()
    fct.test_eq(b[:8], b'\x89PNG\r\n\x1a\n')
    assert 1_000 < len(b) < 200_000, len(b)
    assert not plt.fignum_exists(fig.number), "save_figure closes the figure"
    fct.test_eq([q.name for q in p.parent.iterdir()], ['grid.png'])
