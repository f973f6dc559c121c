"Your own images at any size: load_images, ellipse phantoms, training at each size and channel count, load_model, the BatchNorm regression, CLI errors."
import json
import numpy as np
import pytest
import torch
import fastcore.test as fct
from PIL import Image

from genprior_nb.data import (load_images, split_images, fit_images, convert_channels, load_source, load_dataset, eval_images,
                              ellipses_dataset, show_images)
from genprior_nb.vae import AE, VAE, train_autoencoder
from genprior_nb.wgan import WGANGenerator, Critic, train_wgan
from genprior_nb.pretrained import load_model, load_pretrained
from genprior_nb.cli import main

# ---------------------------------------------------------------- load_images

@pytest.fixture
def folder(tmp_path):
    "Three 8-bit grey PNGs of 16x16 (values 0, 10, 20, ...)."
    d = tmp_path/'imgs'; d.mkdir()
    for i in range(3): Image.fromarray((np.arange(256).reshape(16, 16) * 0 + 10*i).astype(np.uint8)).save(d/f'{i}.png')
    return d

def test_folder_of_pngs(folder):
    x = load_images(folder)
    fct.test_eq(x.shape, (3, 1, 16, 16)); fct.test_eq(x.dtype, torch.float32)
    fct.test_eq(x[:, 0, 0, 0], torch.tensor([0., 10., 20.]) / 255)
    assert x.is_contiguous()

@pytest.mark.parametrize('ext', ['.png', '.tif'])
def test_16_bit_keeps_its_range(tmp_path, ext):
    a = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)   # up to 63,000: far above 8 bits
    Image.fromarray(a).save(tmp_path/f'ct{ext}')
    x = load_images(tmp_path/f'ct{ext}')
    fct.test_close(x[0, 0], torch.from_numpy(a.astype(np.float32) / 65535), eps=1e-6)

def test_rgb_jpeg_and_channel_conversion(tmp_path):
    a = np.zeros((12, 12, 3), np.uint8); a[..., 0] = 200
    Image.fromarray(a).save(tmp_path/'red.png'); Image.fromarray(a).save(tmp_path/'red.jpg', quality=95)
    x = load_images(tmp_path)
    fct.test_eq(x.shape, (2, 3, 12, 12))
    fct.test_close(x[0, 0], torch.full((12, 12), 200 / 255), eps=1e-6)
    fct.test_close(x[1].mean((1, 2)), torch.tensor([200 / 255, 0, 0]), eps=0.03)   # JPEG is lossy
    g = load_images(tmp_path/'red.png', channels=1)
    fct.test_close(g[0, 0], torch.full((12, 12), 0.299 * 200 / 255), eps=2e-3)

def test_mixed_grey_and_rgb_becomes_rgb(tmp_path):
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path/'a.png')
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path/'b.png')
    x = load_images(tmp_path)
    fct.test_eq(x.shape, (2, 3, 8, 8)); fct.test_eq(x[0], torch.ones(3, 8, 8))

def test_multipage_tiff(tmp_path):
    pages = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (0, 51, 102)]
    pages[0].save(tmp_path/'stack.tif', save_all=True, append_images=pages[1:])
    fct.test_close(load_images(tmp_path/'stack.tif')[:, 0, 0, 0], torch.tensor([0., 0.2, 0.4]), eps=1e-6)

def test_arrays_npy_npz_and_tensors(tmp_path):
    a = np.random.default_rng(0).random((4, 10, 10)).astype(np.float32)
    np.save(tmp_path/'a.npy', a); np.savez(tmp_path/'one.npz', imgs=a); np.savez(tmp_path/'two.npz', a=a, b=a)
    for src in (tmp_path/'a.npy', tmp_path/'one.npz', a, torch.from_numpy(a)):
        fct.test_eq(load_images(src), torch.from_numpy(a)[:, None])
    fct.test_eq(load_images(tmp_path/'two.npz', key='b').shape, (4, 1, 10, 10))
    with pytest.raises(ValueError, match=r"holds the arrays \['a', 'b'\]; choose one with key="): load_images(tmp_path/'two.npz')
    with pytest.raises(ValueError, match="key 'c' is not in"): load_images(tmp_path/'two.npz', key='c')
    nhwc = np.zeros((2, 6, 6, 3), np.uint8); nhwc[..., 1] = 255
    fct.test_eq(load_images(nhwc)[:, 1], torch.ones(2, 6, 6))
    fct.test_eq(load_images(np.ones((2, 5, 5), bool)), torch.ones(2, 1, 5, 5))
    hu = np.array([[[-1000., 0.], [1000., 3000.]]])
    fct.test_close(load_images(hu, value_range=(-1000, 3000))[0, 0], torch.tensor([[0., 0.25], [0.5, 1.]]), eps=1e-6)

def test_datasets_of_tensors_pil_and_tuples():
    ds = torch.utils.data.TensorDataset(torch.rand(5, 1, 8, 8), torch.arange(5))   # (image, label) items
    fct.test_eq(load_images(ds), ds.tensors[0])
    pil = [Image.fromarray(np.full((8, 8), 255, np.uint8))] * 2
    fct.test_eq(load_images(pil), torch.ones(2, 1, 8, 8))
    fct.test_eq(load_images([np.zeros((8, 8, 3), np.uint8)]).shape, (1, 3, 8, 8))   # arrays as (H, W, C)
    with pytest.raises(TypeError, match=r"source\[0\]: an item must be an image"): load_images([5])

def test_resize_crop_and_split(folder):
    fct.test_eq(load_images(folder, image_size=(8, 4)).shape, (3, 1, 8, 4))
    fct.test_eq(load_images(folder, image_size=8, fit='crop'), load_images(folder)[..., 4:12, 4:12])
    fct.test_eq(load_images(folder, image_size=32, channels=3).shape, (3, 3, 32, 32))
    tr, te = load_images(folder, test_fraction=0.34, seed=1)
    tr2, te2 = load_images(folder, test_fraction=0.34, seed=1)
    fct.test_eq((tr, te), (tr2, te2)); fct.test_eq((len(tr), len(te)), (2, 1))
    x = torch.arange(20.).view(20, 1, 1, 1) / 20
    a, b = split_images(x, 0.25, seed=3)
    fct.test_eq(sorted((torch.cat([a, b]) * 20).flatten().long().tolist()), list(range(20)))   # a partition
    assert (a.flatten().diff() > 0).all(), 'each part keeps the original order'
    with pytest.raises(ValueError, match=r'test_fraction must be a finite number in \(0, 1\), got 1'): split_images(x, 1)

def test_load_images_errors(tmp_path, folder):
    empty = tmp_path/'empty'; empty.mkdir()
    with pytest.raises(ValueError, match=f"source folder '{empty}' holds no image files"): load_images(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"): load_images(tmp_path/'nope')
    (folder/'notes.txt').write_text('x')
    with pytest.raises(ValueError, match=f"{folder/'notes.txt'}: not an image file"): load_images(folder)
    (folder/'notes.txt').unlink(); (folder/'bad.png').write_bytes(b'\x89PNG not really')
    with pytest.raises(ValueError, match=f"{folder/'bad.png'}: not a readable image"): load_images(folder)
    (folder/'bad.png').unlink(); (folder/'.hidden').write_text('skipped')
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(folder/'wide.png')
    with pytest.raises(ValueError, match=r"different sizes \(.*0.png is 16x16, .*wide.png is 16x20\); pass image_size="): load_images(folder)
    fct.test_eq(load_images(folder, image_size=16).shape, (4, 1, 16, 16))
    with pytest.raises(ValueError, match=r"source: values in \[-0.5, 1\] fall outside \[0, 1\]"): load_images(torch.tensor([[[-0.5, 1.]]]))
    with pytest.raises(ValueError, match=r"fall outside value_range=\(0, 10\)"): load_images(np.array([[[11.]]]), value_range=(0, 10))
    with pytest.raises(ValueError, match='holds NaN or inf'): load_images(torch.tensor([[[float('nan')]]]))
    with pytest.raises(ValueError, match=r'source must be a batch of images .* got shape \(4, 4\); a single image'): load_images(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r'got shape \(2, 2, 4, 4, 4\)'): load_images(np.zeros((2, 2, 4, 4, 4)))
    with pytest.raises(ValueError, match=r'got shape \(2, 5, 4, 4\)'): load_images(np.zeros((2, 5, 4, 4)))
    with pytest.raises(ValueError, match='integer values of dtype int64 have no standard range'): load_images(np.zeros((1, 4, 4), np.int64))
    with pytest.raises(ValueError, match=r"channels must be one of \['1', '3'\], got 4"): load_images(folder, channels=4)
    with pytest.raises(ValueError, match="fit must be one of"): load_images(folder, fit='pad')
    with pytest.raises(ValueError, match=r'value_range must have lo < hi, got \(1, 1\)'): load_images(folder, value_range=(1, 1))
    with pytest.raises(TypeError, match='source must be a folder or file path'): load_images(3.5)
    with pytest.raises(ValueError, match="source holds no images"): load_images([])

def test_fit_and_channels():
    x = torch.rand(2, 3, 12, 18)
    fct.test_eq(fit_images(x, 6, 'crop_resize'), fit_images(x[..., 3:15], 6))
    fct.test_close(convert_channels(x, 1)[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], eps=1e-6)
    with pytest.raises(ValueError, match="fit='crop' cannot make 20x20 images from 12x18 ones"): fit_images(x, 20, 'crop')

# ---------------------------------------------------------------- ellipses and the built-in sets at any size

def test_ellipses_seeded_any_size_in_field_of_view():
    for s in (28, 64, 128):
        e = ellipses_dataset(6, s, seed=2)
        fct.test_eq(e.shape, (6, 1, s, s)); fct.test_eq(e, ellipses_dataset(6, s, seed=2))
        c = (torch.arange(s) + 0.5) / s * 2 - 1
        assert float(e[..., (c[:, None]**2 + c[None]**2) > 0.95**2].max()) == 0   # everything inside r < 0.95
        assert 0 <= e.min() and e.max() <= 1 and (e > 0).float().mean() > 0.2
    # train and test splits are different phantoms; the first n of a split are the n-image split
    tr, te = load_dataset('ellipses', 'train', n=50)[0], load_dataset('ellipses', 'test', n=50)[0]
    assert torch.cdist(tr.flatten(1), te.flatten(1)).min() > 0.5
    fct.test_eq(eval_images(3, dataset='ellipses', image_size=32, channels=3)[0].shape, (3, 3, 32, 32))

def test_load_source():
    fct.test_eq(load_source('shapes', 'test', image_size=16, n=2), load_dataset('shapes', 'test', image_size=16, n=2)[0])
    with pytest.raises(ValueError, match=r"data must be one of \['fmnist', 'shapes', 'ellipses'\] or an existing folder"): load_source('mnist')

def test_show_images_rgb():
    import matplotlib.pyplot as plt
    fig = show_images([torch.rand(3, 3, 8, 8), torch.rand(2, 1, 8, 8)])
    fct.test_eq(fig.axes[0].images[0].get_array().shape, (8, 8, 3)); plt.close(fig)
    with pytest.raises(ValueError, match=r'with C in \{1, 3\}'): show_images(torch.rand(2, 2, 8, 8))

# ---------------------------------------------------------------- every size and channel count trains

SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]

def _data(shape, n=32):
    C, H, _ = shape
    return convert_channels(ellipses_dataset(n, H, seed=1), C)

def _falls(h, key):
    v = h[key]; k = max(1, len(v) // 4)
    return sum(v[-k:]) / k < sum(v[:k]) / k

@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('cls', [AE, VAE])
def test_autoencoders_train_at_each_size(cls, shape):
    torch.manual_seed(0)
    m = cls(4, width=8, image_shape=shape)
    h = train_autoencoder(m, _data(shape), steps=12, batch_size=8, lr=3e-3, progress=False, log_every=1)
    assert _falls(h, 'rec'), h['rec']
    with torch.no_grad(): fct.test_eq(m(torch.zeros(2, 4)).shape, (2,) + shape)

@pytest.mark.parametrize('shape', SHAPES)
def test_wgan_trains_at_each_size(shape):
    torch.manual_seed(0)
    G, D = WGANGenerator(4, 8, shape), Critic(8, shape)
    h = train_wgan(G, D, _data(shape), steps=6, batch_size=8, n_critic=2, lr=1e-3, progress=False, log_every=1)
    assert _falls(h, 'loss_d'), h['loss_d']   # the critic learns to separate real from generated
    with torch.no_grad(): fct.test_eq(G(torch.zeros(2, 4)).shape, (2,) + shape)

def test_128_pixels_trains():
    torch.manual_seed(0)
    m = AE(4, width=4, image_shape=(1, 128, 128))
    h = train_autoencoder(m, ellipses_dataset(4, 128, seed=1), steps=8, batch_size=4, lr=3e-3, progress=False, log_every=1)  # one batch: the same images each step
    assert _falls(h, 'rec'), h['rec']

# ---------------------------------------------------------------- genprior train -> load_model round trip

def test_train_load_model_round_trip(tmp_path, capsys):
    out = tmp_path/'run'
    rc = main(['train', '--model', 'wgan', '--data', 'ellipses', '--image-size', '32', '--channels', '3', '--latent-dim', '3',
               '--width', '8', '--critic-width', '8', '--n-critic', '1', '--steps', '3', '--batch-size', '4', '--subset', '16',
               '--out', str(out), '--no-progress', '--threads', '1'])
    fct.test_eq(rc, 0)
    rec = json.loads((out/'train.json').read_text())
    fct.test_eq((rec['data'], rec['image_size'], rec['channels'], rec['config']['image_shape']), ('ellipses', 32, 3, [3, 32, 32]))
    G = load_model(out)
    assert isinstance(G, WGANGenerator) and not G.training and not any(p.requires_grad for p in G.parameters())
    fct.test_eq(G.image_shape, (3, 32, 32))
    ref = WGANGenerator(3, 8, (3, 32, 32)); ref.load_state_dict(torch.load(out/'model.pt', weights_only=True)); ref.eval()
    z = torch.randn(5, 3)
    with torch.no_grad():
        fct.test_eq(G(z), ref(z)); fct.test_eq(load_model(out/'model.pt')(z), ref(z)); fct.test_eq(load_pretrained(str(out))(z), ref(z))
        fct.test_eq(load_model(out/'checkpoint.pt')(z), ref(z))   # the final checkpoint holds the same generator
    # reconstruct with it: an image in its range comes back
    from genprior_nb.operators import Identity
    from genprior_nb.latent_opt import reconstruct
    from genprior_nb.metrics import psnr
    with torch.no_grad(): x = G(torch.randn(2, 3, generator=torch.Generator().manual_seed(1)))
    res = reconstruct(x, Identity((3, 32, 32)), G, 'csgm', restarts=4, steps=300, lr=0.05)
    assert (psnr(res.x, x) > 30).all(), psnr(res.x, x)

def test_train_on_a_folder(tmp_path, folder):
    out = tmp_path/'run'
    fct.test_eq(main(['train', '--model', 'ae', '--data', str(folder), '--image-size', '16', '--latent-dim', '2', '--width', '8',
                      '--steps', '2', '--batch-size', '2', '--out', str(out), '--no-progress', '--threads', '1']), 0)
    rec = json.loads((out/'train.json').read_text())
    fct.test_eq((rec['data'], rec['config']['image_shape']), (str(folder), [1, 16, 16]))
    fct.test_eq(load_model(out).image_shape, (1, 16, 16))

def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='no trained model at'): load_model(tmp_path/'x')
    with pytest.raises(FileNotFoundError, match='holds neither model.pt with train.json nor checkpoint.pt'): load_model(tmp_path)
    torch.save({'a': 1}, tmp_path/'checkpoint.pt')
    with pytest.raises(ValueError, match='is not a `genprior train` checkpoint'): load_model(tmp_path)
    with pytest.raises(ValueError, match="unknown pretrained model 'nope'"): load_pretrained('nope')

# ---------------------------------------------------------------- the BatchNorm regression

def _bn_gen():
    "An untrained WGAN generator (batch norm) left in train mode, with non-trivial running statistics."
    torch.manual_seed(0)
    G = WGANGenerator(4, 8, (1, 16, 16))
    with torch.no_grad():
        for _ in range(3): G(torch.randn(8, 4))   # train-mode passes move the running statistics away from (0, 1)
    return G.train()

def _untouched(G, before):
    assert G.training and all(m.training for m in G.modules()), 'the caller keeps train mode'
    assert all(p.requires_grad and p.grad is None for p in G.parameters()), 'no parameter gradients, flags restored'
    for k, v in G.state_dict().items(): assert torch.equal(v, before[k]), f'{k} changed'

@pytest.mark.parametrize('method', ['csgm', 'sparse_deviation', 'soft_constraint', 'pgd_gan'])
def test_reconstruct_leaves_a_train_mode_generator_alone(method):
    from genprior_nb.operators import make_operator
    from genprior_nb.latent_opt import reconstruct
    G = _bn_gen(); before = {k: v.clone() for k, v in G.state_dict().items()}
    op = make_operator('inpaint', 0.5, (1, 16, 16))
    x = torch.rand(2, 1, 16, 16); y = op.measure(x, 0.05, seed=0)
    kw = {'csgm': dict(restarts=2, steps=5), 'sparse_deviation': dict(restarts=2, warmup_steps=3, steps=3),
          'soft_constraint': dict(restarts=2, warmup_steps=3, steps=3), 'pgd_gan': dict(restarts=2, outer=2, inner=3)}[method]
    r1 = reconstruct(y, op, G, method, seed=0, **kw)
    _untouched(G, before)
    r2 = reconstruct(y, op, G, method, seed=0, **kw)   # the symptom: the second call gave another PSNR
    fct.test_eq(r1.x, r2.x)

def test_analyses_leave_a_train_mode_generator_alone():
    from genprior_nb.range import representation_error, recovery_rate, loss_slice, random_plane, far_samples
    from genprior_nb.latent_space import latent_codes, interpolation_grid, smoothness
    from genprior_nb.mode_collapse import mode_collapse_report
    from genprior_nb.scorecard import evaluate_generator
    G = _bn_gen(); before = {k: v.clone() for k, v in G.state_dict().items()}
    x = ellipses_dataset(3, 16, seed=0)
    rr = representation_error(G, x, restarts=2, steps=3); _untouched(G, before)
    recovery_rate(G, n=2, restarts_list=(1, 2), steps=3); _untouched(G, before)
    loss_slice(G, x[0], rr.z[0], *random_plane(4), n=3); far_samples(G, (1, 3), n=2); _untouched(G, before)
    z = latent_codes(G, x, restarts=1, steps=3)
    interpolation_grid(G, z, z.roll(1, 0), n=3); smoothness(G, z, z.roll(1, 0), n=5); _untouched(G, before)
    mode_collapse_report(G, n=16, n_emd=3, n_pool=40, sizes=(8,), n_batches=2, real=x); _untouched(G, before)
    ev = evaluate_generator(G, x, n_images=3, restarts=2, steps=3, n_recovery=2, n_samples=16, progress=False,
                            n_pool=40, sizes=(8,), n_batches=2, n_emd=3)
    _untouched(G, before)
    fct.test_eq(ev['dataset'], '3 own images')

def test_evaluate_generator_on_a_built_in_set_at_the_generator_size():
    from genprior_nb.scorecard import evaluate_generator
    torch.manual_seed(0)
    G = VAE(3, width=8, image_shape=(1, 32, 32)).eval().requires_grad_(False)
    ev = evaluate_generator(G, 'ellipses', n_images=2, restarts=1, steps=2, n_recovery=1, samples=False, progress=False)
    fct.test_eq((ev['dataset'], ev['settings']['n_images']), ('ellipses', 2))

# ---------------------------------------------------------------- CLI errors: one line each

@pytest.mark.parametrize('args, msg', [
    (['--data', 'nosuch'], "genprior: error: data must be one of ['fmnist', 'shapes', 'ellipses'] or an existing folder or file of images"),
    (['--data', 'ellipses', '--image-size', '30'], 'genprior: error: image_shape (1, 30, 30): the conv nets need sides divisible by 4'),
    (['--data', 'ellipses', '--image-size', '0'], 'genprior: error: image_size must be an integer in [8, 4096], got 0'),
    (['--data', 'ellipses', '--channels', '2'], "genprior train: error: argument --channels: invalid choice: 2 (choose from 1, 3)"),
    (['--data', 'ellipses', '--image-size', 'big'], "genprior train: error: argument --image-size: invalid int value: 'big'"),
])
def test_cli_errors(tmp_path, capsys, args, msg):
    try: rc = main(['train', '--model', 'vae', '--subset', '8', '--batch-size', '4', '--out', str(tmp_path/'o'), *args])
    except SystemExit as e: rc = e.code
    err = capsys.readouterr().err
    fct.test_eq(rc, 2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(msg), err

def test_cli_error_names_the_bad_file(tmp_path, capsys, folder):
    (folder/'readme.md').write_text('x')
    rc = main(['train', '--model', 'vae', '--data', str(folder), '--out', str(tmp_path/'o')])
    err = capsys.readouterr().err
    fct.test_eq(rc, 2); fct.test_eq(len(err.strip().splitlines()), 1)
    assert err.startswith(f"genprior: error: {folder/'readme.md'}: not an image file"), err
