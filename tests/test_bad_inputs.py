"""A catalogue of bad inputs across the public API, each expected to fail with a clear error that names the argument,
the value received and what is accepted.

Every entry is (id, callable, exception type, message fragment); one parametrised test runs them all. The CLI entries run
in subprocesses, all started together on first use: a few as the real `genprior` console script, the rest in turn in one
`python -c` process that calls `genprior_nb.cli.main(argv)`. Each expects exit status 2 and exactly one `genprior...error:`
line on stderr, no traceback, and raises `CLIUserError(that line)` so that it fits the table.
"""
import os, sys, gzip, json, shutil, atexit, tempfile, subprocess
from pathlib import Path
import pytest
import torch
from conftest import Payload, tiny_generator
from torch import nn

from genprior_nb import data as D, operators as O, vae as V, wgan as W, pretrained as P, latent_opt as L
from genprior_nb import metrics as M, baselines as BL
from genprior_nb.core import atomic_torch_save, UnsafeCheckpointError, get_device, seed_everything

EXE = Path(sys.executable).parent/'genprior'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
WORK = Path(tempfile.mkdtemp(prefix='genprior_bad_inputs_'))  # files the entries read (built lazily)
atexit.register(shutil.rmtree, WORK, ignore_errors=True)

# ---------------------------------------------------------------- small shared objects (cheap to build)

torch.manual_seed(0)
G4 = tiny_generator('vae', 4, 8)                           # a tiny generator of (1, 28, 28) images
OP = O.CompressedSensing(20, seed=0)                        # y of shape (B, 20)
X2 = torch.rand(2, 1, 28, 28)
Y2 = OP.A(X2)
INP = O.RandomInpainting(0.5, in_shape=(1, 8, 8))
X8 = torch.rand(2, 1, 8, 8)
Y8 = INP.A(X8)

def nan_like(t):
    t = t.clone(); t.view(-1)[0] = float('nan'); return t

def inf_like(t):
    t = t.clone(); t.view(-1)[-1] = float('inf'); return t

# ---------------------------------------------------------------- files: missing, wrong type, crafted pickle


MARKER = WORK/'pwned'

def evil_file():
    p = WORK/'evil.pt'
    if not p.exists(): torch.save({'fc.weight': torch.zeros(1), 'x': Payload(MARKER)}, p)
    return p

def text_file():
    p = WORK/'notes.pt'; p.write_text('these are not weights\n' * 20); return p

def png_file():
    p = WORK/'image.pt'; p.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(200)); return p

def truncated_ckpt():
    p = WORK/'trunc.pt'
    if not p.exists():
        good = atomic_torch_save(V.VAE(4, width=8).state_dict(), WORK/'good.pt').read_bytes()
        p.write_bytes(good[:len(good)//2])
    return p

def list_file():
    p = WORK/'list.pt'; torch.save([torch.zeros(2)], p); return p

def other_arch():
    p = WORK/'ae16.pt'; torch.save(V.AE(16, width=8).state_dict(), p); return p

def corrupt_fmnist():
    "A folder with the two train files of Fashion-MNIST, both garbage."
    d = WORK/'fmnist'; d.mkdir(exist_ok=True)
    for n in ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'): (d/n).write_bytes(b'not gzip at all')
    return d

def truncated_fmnist():
    d = WORK/'fmnist_trunc'; d.mkdir(exist_ok=True)
    for n in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
        (d/n).write_bytes(gzip.compress(b'\x00\x00\x08\x03' + (10).to_bytes(4, 'big') + bytes(100)))
    return d

# ---------------------------------------------------------------- the CLI as a subprocess

class CLIUserError(Exception):
    "The CLI exited with status 2 and a single 'genprior: error:' line (the message)."

def _cli_out():
    d = WORK/'cli'; d.mkdir(exist_ok=True); return d

def _ckpt_dir(name, content):
    d = _cli_out()/name; d.mkdir(exist_ok=True)
    src = content() if callable(content) else content
    (d/'checkpoint.pt').write_bytes(Path(src).read_bytes()); return d

def _file_as_out():
    p = _cli_out()/'a_file'; p.write_text('x'); return p

_TRAIN = ['--threads', '1', 'train', '--model', 'vae', '--data', 'shapes', '--subset', '32', '--width', '8', '--batch-size', '8',
          '--steps', '2', '--no-progress', '--device', 'cpu']

_DRIVER = """
import sys, json, io, contextlib, traceback
from genprior_nb.cli import main
res = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: rc = main(argv)
        except SystemExit as e: rc = e.code
        except BaseException: rc = 'raised'; traceback.print_exc()
    res.append((rc, err.getvalue()))
print(json.dumps(res))
"""

class CLI:
    """A deferred `genprior` call. All CLI entries start together the first time one of them is called: those with
    `exe=True` as the real console script each, the others in turn in one `python -c` process that calls
    `genprior_nb.cli.main(argv)` (one torch import instead of one per case; the CPU is shared)."""
    instances, driver = [], None
    def __init__(self, *args, exe=False): self.args, self.exe, self.proc, self.res = args, exe, None, None; CLI.instances.append(self)
    def argv(self): return [str(a() if callable(a) else a) for a in self.args]
    @classmethod
    def start_all(cls):
        popen = lambda cmd: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=WORK)
        for c in cls.instances:
            if c.exe and c.proc is None: c.proc = popen([str(EXE)] + c.argv())
        if cls.driver is None:
            cls.batch = [c for c in cls.instances if not c.exe]
            cls.driver = popen([sys.executable, '-c', _DRIVER, json.dumps([c.argv() for c in cls.batch])])
    def result(self):
        if self.res is None:
            if self.exe:
                out, err = self.proc.communicate(timeout=240); self.res = (self.proc.returncode, err)
            else:
                out, err = CLI.driver.communicate(timeout=240) if CLI.driver.returncode is None else (CLI.driver_out, '')
                CLI.driver_out = out
                assert CLI.driver.returncode == 0, err
                for c, r in zip(CLI.batch, json.loads(out)): c.res = tuple(r)
        return self.res
    def __call__(self):
        if self.exe and not EXE.is_file(): pytest.skip(f'console script {EXE} not installed')
        CLI.start_all()
        rc, err = self.result()
        lines = err.strip().splitlines()
        assert 'Traceback' not in err, f"traceback from {self.args}:\n{err}"
        assert rc == 2, f"exit status {rc} from {self.args}; stderr:\n{err}"
        assert len(lines) == 1, f"expected one stderr line from {self.args}, got:\n{err}"
        assert lines[0].startswith('genprior'), lines[0]
        raise CLIUserError(lines[0])

def cli_train(*extra, out=None, exe=False):
    n = len(CLI.instances)
    return CLI(*_TRAIN, '--out', out if out is not None else (lambda: _cli_out()/f'run{n}'), *extra, exe=exe)

# ---------------------------------------------------------------- the catalogue

C = []
def case(id, fn, exc, frag): C.append(pytest.param(fn, exc, frag, id=id))

# --- data
case('data/shapes-n-negative', lambda: D.shapes_dataset(-1), ValueError, 'n must be an integer in [0, inf], got -1')
case('data/shapes-n-float', lambda: D.shapes_dataset(2.5), TypeError, 'n must be an integer, got float 2.5')
case('data/shapes-size-too-small', lambda: D.shapes_dataset(2, size=4), ValueError, 'size must be an integer in [8, 1024], got 4')
case('data/shapes-max-shapes-0', lambda: D.shapes_dataset(2, max_shapes=0), ValueError, 'max_shapes must be an integer in [1, 10], got 0')
case('data/unknown-dataset', lambda: D.load_dataset('mnist'), ValueError, "name must be one of ['ellipses', 'fmnist', 'shapes'], got 'mnist'")
case('data/unknown-split', lambda: D.load_dataset('shapes', split='val'), ValueError, "split must be one of ['test', 'train'], got 'val'")
case('data/eval-n-0', lambda: D.eval_images(0, dataset='shapes'), ValueError, 'n must be an integer in [1, 10000], got 0')
case('data/eval-n-too-many', lambda: D.eval_images(20_000, dataset='shapes'), ValueError, 'n must be an integer in [1, 10000], got 20000')
case('data/fmnist-corrupt-gzip', lambda: D.load_fashion_mnist('train', path=corrupt_fmnist()), D.DataFileError, 'train-images-idx3-ubyte.gz: truncated or corrupt gzip file')
case('data/fmnist-truncated', lambda: D.load_fashion_mnist('test', path=truncated_fmnist()), D.DataFileError, 't10k-images-idx3-ubyte.gz: decompressed size 108 bytes, expected 7,840,016 (truncated or wrong file)')
case('data/idx-too-short', lambda: D.parse_idx(b'abc', 'f.idx'), D.DataFileError, 'f.idx: too short to be an IDX file (3 bytes)')
case('data/idx-bad-magic', lambda: D.parse_idx(b'\x01\x02\x03\x04' + bytes(8), 'f.idx'), D.DataFileError, 'bad IDX magic 01020304')
case('data/show-images-not-images', lambda: D.show_images('abc'), TypeError, "x must be a tensor of images (B, C, H, W) or (B, H, W), got str")
case('data/show-images-two-channels', lambda: D.show_images([X2, torch.rand(2, 2, 8, 8)]), ValueError, 'x[1] must be a tensor of images (B, C, H, W) with C in {1, 3}, or (B, H, W), got shape (2, 2, 8, 8)')

# --- operators: construction
case('op/unknown-name', lambda: O.make_operator('fourier'), ValueError, "name must be one of")
case('op/in-shape-2d', lambda: O.Identity(in_shape=(28, 28)), ValueError, 'in_shape must be a tuple (C, H, W), got (28, 28)')
case('op/in-shape-zero', lambda: O.Identity(in_shape=(1, 0, 28)), ValueError, 'in_shape entries must be an integer in [1, inf], got 0')
case('op/inpaint-keep-0', lambda: O.RandomInpainting(keep=0), ValueError, 'keep must be a finite number in (0, 1], got 0')
case('op/inpaint-keep-nan', lambda: O.RandomInpainting(keep=float('nan')), ValueError, 'keep must be a finite number in (0, 1], got nan')
case('op/inpaint-keep-str', lambda: O.RandomInpainting(keep='half'), TypeError, "keep must be a real number, got str 'half'")
case('op/mask-wrong-shape', lambda: O.Inpainting(torch.ones(27, 28)), ValueError, 'mask must have shape (H, W) = (28, 28), got (27, 28)')
case('op/mask-not-binary', lambda: O.Inpainting(torch.full((28, 28), 0.5)), ValueError, 'mask must hold only 0 and 1, got 784 other values such as 0.5')
case('op/block-outside', lambda: O.BlockInpainting((20, 20, 10, 10)), ValueError, 'box (top, left, height, width) = (20, 20, 10, 10) must be non-empty and inside the 28x28 image')
case('op/cs-m-0', lambda: O.CompressedSensing(m=0), ValueError, 'm must be an integer in [1, 784], got 0')
case('op/cs-m-too-large', lambda: O.CompressedSensing(m=1000), ValueError, 'm must be an integer in [1, 784], got 1000')
case('op/cs-seed-negative', lambda: O.CompressedSensing(m=5, seed=-1), ValueError, 'seed must be an integer in [0, inf], got -1')
case('op/blur-even-width', lambda: O.GaussianBlur(width=4), ValueError, 'width must be odd, got 4')
case('op/blur-sigma-negative', lambda: O.GaussianBlur(sigma=-1.), ValueError, 'sigma must be a finite number in (0, inf], got -1.0')
case('op/downsample-factor', lambda: O.Downsample(factor=3), ValueError, 'factor must divide the image size (28, 28), got 3')
case('op/tomo-no-angles', lambda: O.ParallelBeamTomography(n_angles=0), ValueError, 'n_angles must be an integer in [1, inf], got 0')
case('op/tomo-nan-angle', lambda: O.ParallelBeamTomography(angles=[0., float('nan')], in_shape=(1, 8, 8)), ValueError, 'angles must be a non-empty list of finite degrees')
case('op/limited-range-empty', lambda: O.LimitedAngleTomography(max_angle_deg=0.), ValueError, 'max_angle_deg must be a finite number in (0.0, 180.0], got 0.0')
# --- operators: application
case('op/A-wrong-shape', lambda: OP.A(torch.rand(2, 1, 27, 28)), ValueError, 'x must have image shape (C, H, W) = (1, 28, 28), got (1, 27, 28)')
case('op/A-3d', lambda: OP.A(torch.rand(1, 28, 28)), ValueError, 'x must be a 4-D tensor (B, C, H, W), got shape (1, 28, 28)')
case('op/A-int-dtype', lambda: OP.A(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)), TypeError, 'x must have a floating-point dtype, got torch.uint8')
case('op/A-numpy', lambda: OP.A(X2.numpy()), TypeError, 'x must be a torch.Tensor of shape (B, C, H, W), got ndarray')
case('op/adjoint-wrong-shape', lambda: OP.A_adjoint(torch.rand(2, 21)), ValueError, 'y must have shape (B, 20) for CompressedSensing(m=20, seed=0, in_shape=(1, 28, 28)), got (2, 21)')
case('op/adjoint-int-dtype', lambda: OP.A_adjoint(torch.zeros(2, 20, dtype=torch.int64)), TypeError, 'y must have a floating-point dtype, got torch.int64')
case('op/measure-nan', lambda: OP.measure(nan_like(X2)), ValueError, 'x contains NaN or inf values')
case('op/measure-empty', lambda: OP.measure(X2[:0]), ValueError, 'x is an empty batch (B = 0)')
case('op/measure-noise-negative', lambda: OP.measure(X2, noise_std=-0.1), ValueError, 'noise_std must be a finite number in [0, inf], got -0.1')
case('op/measure-noise-inf', lambda: OP.measure(X2, noise_std=float('inf')), ValueError, 'noise_std must be a finite number in [0, inf], got inf')
case('op/measure-unknown-noise', lambda: OP.measure(X2, 0.1, noise='laplace'), ValueError, "noise must be one of ['gaussian', 'poisson'], got 'laplace'")
case('op/poisson-negative-Ax', lambda: OP.measure(X2, noise='poisson'), ValueError, "noise='poisson' needs A x >= 0")
case('op/pinv-n-iter-0', lambda: OP.pseudo_inverse(Y2, n_iter=0), ValueError, 'n_iter must be an integer in [1, inf], got 0')
case('op/norm-n-iter-bool', lambda: OP.norm(n_iter=True), TypeError, 'n_iter must be an integer, got bool True')

# --- models
case('model/vae-latent-0', lambda: V.VAE(0), ValueError, 'latent_dim must be an integer in [1, 1024], got 0')
case('model/vae-width-2', lambda: V.VAE(4, width=2), ValueError, 'width must be an integer in [4, 1024], got 2')
case('model/vae-kl-negative', lambda: V.VAE(4, kl_weight=-1), ValueError, 'kl_weight must be a finite number in [0, inf], got -1')
case('model/wgan-latent-str', lambda: W.WGANGenerator('8'), TypeError, "latent_dim must be an integer, got str '8'")
case('model/z-wrong-width', lambda: G4(torch.zeros(2, 3)), ValueError, 'z must have shape (B, 4) for a generator with latent_dim=4, got (2, 3)')
case('model/z-int-dtype', lambda: G4(torch.zeros(2, 4, dtype=torch.int64)), TypeError, 'z must have a floating-point dtype, got torch.int64')
case('model/z-not-tensor', lambda: G4([[0.] * 4]), TypeError, 'z must be a torch.Tensor of shape (B, 4), got list')
case('model/encode-wrong-shape', lambda: G4.encode(torch.rand(2, 1, 32, 32)), ValueError, 'x must have image shape (C, H, W) = (1, 28, 28), got (1, 32, 32)')
case('model/sample-n-0', lambda: G4.sample(0), ValueError, 'n must be an integer in [1, inf], got 0')
case('train/ae-wrong-model', lambda: V.train_autoencoder(W.WGANGenerator(4, 8), X2), TypeError, 'model must be an AE or VAE, got WGANGenerator')
case('train/ae-batch-too-large', lambda: V.train_autoencoder(V.VAE(4, width=8), X2, batch_size=8, progress=False), ValueError, 'batch_size must be an integer in [1, 2], got 8')
case('train/ae-lr-0', lambda: V.train_autoencoder(V.VAE(4, width=8), X2, lr=0.), ValueError, 'lr must be a finite number in (0, inf], got 0.0')
case('train/ae-data-nan', lambda: V.train_autoencoder(V.VAE(4, width=8), nan_like(X2)), ValueError, 'data contains NaN or inf values')
case('train/ae-data-wrong-shape', lambda: V.train_autoencoder(V.VAE(4, width=8), X8), ValueError, 'data must have image shape (C, H, W) = (1, 28, 28), got (1, 8, 8)')
case('train/ae-steps-negative', lambda: V.train_autoencoder(V.VAE(4, width=8), X2, steps=-5, batch_size=2), ValueError, 'steps must be an integer in [0, inf], got -5')
case('train/ae-empty-data', lambda: V.train_autoencoder(V.VAE(4, width=8), X2[:0]), ValueError, 'data is an empty batch (B = 0)')
case('train/wgan-bad-critic', lambda: W.train_wgan(W.WGANGenerator(4, 8), nn.Linear(2, 2), X2), TypeError, 'D must be a Critic, got Linear')
case('train/wgan-n-critic-0', lambda: W.train_wgan(W.WGANGenerator(4, 8), W.Critic(4), X2, n_critic=0), ValueError, 'n_critic must be an integer in [1, inf], got 0')
case('train/resume-crafted-pickle', lambda: V.train_autoencoder(V.VAE(4, width=8), X2, steps=1, batch_size=2, ckpt_path=evil_file(), resume=True, progress=False),
     UnsafeCheckpointError, "evil.pt': it contains objects other than tensors and plain containers, which could execute code")
case('train/resume-other-config', lambda: (V.train_autoencoder(V.VAE(4, width=8), X2, steps=1, batch_size=2, ckpt_path=WORK/'cfg.pt', progress=False),
                                           V.train_autoencoder(V.VAE(4, width=8), X2, steps=2, batch_size=2, ckpt_path=WORK/'cfg.pt', resume=True, progress=False)),
     ValueError, "resume: the checkpoint")
# --- pretrained weights
case('weights/unknown-name', lambda: P.load_pretrained('vae-mnist-8'), ValueError, "unknown pretrained model 'vae-mnist-8'; available:")
case('weights/name-not-str', lambda: P.load_pretrained(8), TypeError, 'name must be a str, got int')
case('weights/bad-device', lambda: P.load_pretrained(P.list_pretrained()[0], device='gpu0'), ValueError, "device must be 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, got 'gpu0'")
case('weights/device-wrong-type', lambda: get_device(0.5), TypeError, 'device must be a str or torch.device, got float')
case('weights/config-unknown-model', lambda: P.build_model({'model': 'gan', 'latent_dim': 8}), ValueError, "config['model'] must be one of ['ae', 'vae', 'wgan'], got 'gan'")
case('weights/config-bad-latent', lambda: P.build_model({'model': 'vae', 'latent_dim': -8}), ValueError, 'latent_dim must be an integer in [1, 1024], got -8')
case('weights/missing-file', lambda: P.load_weights(V.VAE(4, width=8), WORK/'nope.pt'), FileNotFoundError, "nope.pt' does not exist")
case('weights/text-file', lambda: P.load_weights(V.VAE(4, width=8), text_file()), UnsafeCheckpointError, "notes.pt' is not a readable torch checkpoint")
case('weights/png-file', lambda: P.load_weights(V.VAE(4, width=8), png_file()), UnsafeCheckpointError, "image.pt' is not a readable torch checkpoint")
case('weights/truncated', lambda: P.load_weights(V.VAE(4, width=8), truncated_ckpt()), UnsafeCheckpointError, "trunc.pt' is not a readable torch checkpoint (truncated or corrupt?)")
case('weights/crafted-pickle', lambda: P.load_weights(V.VAE(4, width=8), evil_file()), UnsafeCheckpointError, "evil.pt': it contains objects other than tensors")
case('weights/not-a-state-dict', lambda: P.load_weights(V.VAE(4, width=8), list_file()), UnsafeCheckpointError, "list.pt' does not hold a state dict")
case('weights/other-architecture', lambda: P.load_weights(V.VAE(4, width=8), other_arch()), ValueError, "does not match the VAE architecture")

# --- latent-space solvers
case('solve/y-wrong-shape', lambda: L.csgm(torch.rand(2, 21), OP, G4, steps=1), ValueError, 'y must have shape (B, 20) for CompressedSensing(m=20, seed=0, in_shape=(1, 28, 28)), got (2, 21)')
case('solve/y-nan', lambda: L.csgm(nan_like(Y2), OP, G4, steps=1), ValueError, 'y contains NaN or inf values')
case('solve/y-inf', lambda: L.pgd_gan(inf_like(Y2), OP, G4), ValueError, 'y contains NaN or inf values')
case('solve/y-empty', lambda: L.csgm(Y2[:0], OP, G4, steps=1), ValueError, 'y is an empty batch (B = 0)')
case('solve/y-int', lambda: L.csgm(Y2.long(), OP, G4, steps=1), TypeError, 'y must have a floating-point dtype, got torch.int64')
case('solve/y-not-tensor', lambda: L.csgm(Y2.tolist(), OP, G4, steps=1), TypeError, 'y must be a torch.Tensor of shape (B, 20), got list')
case('solve/op-not-operator', lambda: L.csgm(Y2, 'cs', G4, steps=1), TypeError, 'op must be a genprior_nb LinearOperator, got str')
case('solve/G-not-generator', lambda: L.csgm(Y2, OP, nn.Linear(4, 784), steps=1), TypeError, 'G (Linear) has no latent_dim attribute; a generator needs one (the size k of z)')
case('solve/G-image-shape', lambda: L.csgm(Y8, INP, G4, steps=1), ValueError, 'the generator makes images of shape (1, 28, 28) but op expects (1, 8, 8)')
case('solve/G-other-device', lambda: L.csgm(Y2, OP, V.VAE(4, width=8).to('meta'), steps=1), ValueError, 'G is on device meta but y is on cpu')
case('solve/restarts-0', lambda: L.csgm(Y2, OP, G4, restarts=0), ValueError, 'restarts must be an integer in [1, inf], got 0')
case('solve/steps-0', lambda: L.csgm(Y2, OP, G4, steps=0), ValueError, 'steps must be an integer in [1, inf], got 0')
case('solve/lr-negative', lambda: L.csgm(Y2, OP, G4, lr=-0.1), ValueError, 'lr must be a finite number in (0, inf], got -0.1')
case('solve/lam-negative', lambda: L.csgm(Y2, OP, G4, steps=1, lam=-1.), ValueError, 'lam must be a finite number in [0, inf], got -1.0')
case('solve/lam-wrong-shape', lambda: L.csgm(Y2, OP, G4, steps=1, lam=torch.ones(3)), ValueError, 'lam must be a number or a tensor of shape (B,) = (2,), got (3,)')
case('solve/unknown-optimizer', lambda: L.csgm(Y2, OP, G4, steps=1, optimizer='sgd'), ValueError, "optimizer must be one of ['adam', 'lbfgs'], got 'sgd'")
case('solve/unknown-init', lambda: L.csgm(Y2, OP, G4, steps=1, init='zeros'), ValueError, "init must be one of ['encoder', 'prior'], got 'zeros'")
case('solve/init-wrong-shape', lambda: L.csgm(Y2, OP, G4, steps=1, init=torch.zeros(2, 5)), ValueError, 'init must have shape (B, R, k) = (2, 5, 4) or (B, k), got (2, 5)')
case('solve/init-encoder-no-encoder', lambda: L.csgm(Y2, OP, W.WGANGenerator(4, 8).eval(), steps=1, init='encoder'), ValueError, "init='encoder' needs a generator with an encoder; WGANGenerator has none")
case('solve/unknown-method', lambda: L.reconstruct(Y2, OP, G4, 'admm'), ValueError, "method must be one of ['csgm', 'pgd_gan', 'soft_constraint', 'sparse_deviation'], got 'admm'")
case('solve/sparse-unknown-basis', lambda: L.sparse_deviation(Y2, OP, G4, basis='fourier', restarts=1, warmup_steps=1, steps=1), ValueError, "basis must be one of ['dct', 'haar', 'pixel'], got 'fourier'")
case('solve/sparse-weight-negative', lambda: L.sparse_deviation(Y2, OP, G4, weight=-0.1, restarts=1, warmup_steps=1, steps=1), ValueError, 'weight must be a finite number in [0, inf], got -0.1')
case('solve/soft-b-nan', lambda: L.soft_constraint(Y2, OP, G4, b=float('nan'), restarts=1, warmup_steps=1, steps=1), ValueError, 'b must be a finite number in [0, inf], got nan')
case('solve/soft-tv-negative', lambda: L.soft_constraint(Y2, OP, G4, tv=-0.5, restarts=1, warmup_steps=1, steps=1), ValueError, 'tv must be a finite number in [0, inf], got -0.5')
case('solve/soft-pd-iters-0', lambda: L.soft_constraint(Y2, OP, G4, tv=0.1, pd_iters=0, restarts=1, warmup_steps=1, steps=1), ValueError, 'pd_iters must be an integer in [1, inf], got 0')
case('solve/pgd-eta-0', lambda: L.pgd_gan(Y2, OP, G4, eta=0.), ValueError, 'eta must be a finite number in (0, inf], got 0.0')
case('solve/pgd-outer-0', lambda: L.pgd_gan(Y2, OP, G4, outer=0), ValueError, 'outer must be an integer in [1, inf], got 0')

# --- metrics
case('metric/psnr-shape-mismatch', lambda: M.psnr(X2, X2[:1]), ValueError, 'x_hat and x must have the same shape, got (2, 1, 28, 28) and (1, 1, 28, 28)')
case('metric/psnr-nan', lambda: M.psnr(nan_like(X2), X2), ValueError, 'x_hat contains NaN or inf values')
case('metric/psnr-data-range-0', lambda: M.psnr(X2, X2, data_range=0), ValueError, 'data_range must be a finite number in (0, inf], got 0')
case('metric/compare-nan-psnr', lambda: M.compare([{'method': 'tv', 'operator': 'cs', 'psnr': [1., float('nan')]}]), ValueError, 'results[0]["psnr"] contains NaN or inf values')
case('metric/ssim-too-small', lambda: M.ssim(X8, X8), ValueError, 'ssim needs images of at least 11x11 pixels for sigma=1.5, got 8x8')
case('metric/ssim-int', lambda: M.ssim(X2, (X2*255).to(torch.uint8)), TypeError, 'x must have a floating-point dtype, got torch.uint8')
case('metric/misfit-wrong-y', lambda: M.data_misfit(OP, X2, Y2[:, :5]), ValueError, 'y must have shape (2, 20) (B, *op.out_shape) to match x, got shape (2, 5)')
case('metric/ci-empty', lambda: M.mean_ci([]), ValueError, 'values is empty')
case('metric/ci-nan', lambda: M.mean_ci([1., float('nan')]), ValueError, 'values contains NaN or inf values')
case('metric/ci-level', lambda: M.mean_ci([1., 2.], level=1.5), ValueError, 'level must be a finite number in (0, 1), got 1.5')
case('metric/ci-strings', lambda: M.mean_ci(['a', 'b']), TypeError, 'values must be numbers (a tensor, array or list), got list')
case('metric/compare-empty', lambda: M.compare([]), ValueError, 'results must be a non-empty list of record dicts')
case('metric/compare-missing-key', lambda: M.compare([{'method': 'tv', 'psnr': [1.]}]), ValueError, "results[0] lacks the key(s) ['operator']")
case('metric/table-empty', lambda: M.format_table([]), ValueError, 'rows is empty')

# --- classical baselines
case('base/tikhonov-lam-negative', lambda: BL.tikhonov(Y2, OP, lam=-1.), ValueError, 'lam must be a finite number in (0, inf], got -1.0')
case('base/lasso-unknown-basis', lambda: BL.lasso(Y2, OP, basis='fourier'), ValueError, "basis must be one of ['dct', 'haar', 'pixel'], got 'fourier'")
case('base/tv-n-iter-0', lambda: BL.tv_reconstruct(Y2, OP, n_iter=0), ValueError, 'n_iter must be an integer in [1, inf], got 0')
case('base/tv-bad-box', lambda: BL.tv_reconstruct(Y2, OP, box=(1., 0.)), ValueError, 'box[1] must be a finite number in [1.0, inf], got 0.0')
case('base/y-wrong-shape', lambda: BL.least_squares(torch.rand(2, 1, 28, 28), OP), ValueError, 'y must have shape (B, 20) for')
case('base/y-nan', lambda: BL.adjoint_recon(nan_like(Y2), OP), ValueError, 'y contains NaN or inf values')
case('base/y-empty', lambda: BL.tikhonov(Y2[:0], OP), ValueError, 'y is an empty batch (B = 0)')
case('base/op-not-operator', lambda: BL.tv_reconstruct(Y2, OP.matrix), TypeError, 'op must be a genprior_nb LinearOperator, got Tensor')
case('base/unknown-method', lambda: BL.baseline_reconstruct(Y2, OP, 'wiener'), ValueError, "method must be one of ['adjoint', 'biharmonic', 'bm3d', 'fbp', 'l1_dct', 'l1_wavelet', 'least_squares', 'pnp_bm3d', 'tikhonov', 'tv'], got 'wiener'")
case('base/lam-not-used', lambda: BL.baseline_reconstruct(Y2, OP, 'adjoint', lam=0.1), ValueError, "lam is not used by method 'adjoint'")
case('base/haar-level-too-high', lambda: BL.haar2(X8, level=4), ValueError, 'level must be an integer in [1, 3], got 4')
case('base/haar-odd-size', lambda: BL.haar2(torch.rand(1, 1, 7, 7)), ValueError, 'a Haar transform needs even image sides, got 7x7')
case('base/discrepancy-noise-0', lambda: BL.discrepancy_lambda(Y2, OP, 'tikhonov', noise_std=0.), ValueError, 'noise_std must be a finite number in (0, inf], got 0.0')
case('base/discrepancy-lams-empty', lambda: BL.discrepancy_lambda(Y2, OP, 'tikhonov', 0.1, lams=[]), ValueError, 'lams must be positive finite numbers, got []')
case('base/discrepancy-solver-type', lambda: BL.discrepancy_lambda(Y2, OP, 3, 0.1), TypeError, 'solver must be a method name or a callable solver(y, op, lam), got int')

# --- devices: on a machine without CUDA a CUDA request is refused up front; with CUDA, mixing devices is refused
if not torch.cuda.is_available():
    case('device/cuda-unavailable', lambda: O.CompressedSensing(5).to(get_device('cuda')), ValueError, "device 'cuda' was requested but CUDA is not available")
else:
    case('device/y-on-gpu-G-on-cpu', lambda: L.csgm(Y2.cuda(), OP.cuda(), G4, steps=1), ValueError, 'G is on device cpu but y is on cuda')
    case('device/metrics-mixed', lambda: M.psnr(X2.cuda(), X2), ValueError, 'x_hat and x must be on the same device')

# --- core
case('core/seed-negative', lambda: seed_everything(-3), ValueError, 'seed must be an integer in [0, inf], got -3')

# --- the CLI (subprocesses)
case('cli/threads-0', CLI('--threads', '0', 'list'), CLIUserError, '--threads must be >= 1, got 0')
case('cli/unknown-model', CLI('train', '--model', 'gan', '--out', 'x', exe=True), CLIUserError, "argument --model: invalid choice: 'gan'")
case('cli/steps-not-int', CLI('train', '--model', 'vae', '--steps', 'many', '--out', 'x'), CLIUserError, "argument --steps: invalid int value: 'many'")
case('cli/unknown-benchmark', CLI('bench', 'speed'), CLIUserError, "argument what: invalid choice: 'speed'")
case('cli/subset-0', cli_train('--subset', '0'), CLIUserError, 'subset must be an integer in [1, inf], got 0')
case('cli/batch-size-0', cli_train('--batch-size', '0'), CLIUserError, 'batch_size must be an integer in [1, inf], got 0')
case('cli/batch-size-too-large', cli_train('--batch-size', '64'), CLIUserError, 'batch_size must be an integer in [1, 32], got 64')
case('cli/lr-negative', cli_train('--lr', '-1'), CLIUserError, 'lr must be a finite number in (0, inf], got -1.0')
case('cli/epochs-negative', cli_train('--epochs', '-2'), CLIUserError, 'epochs must be a finite number in (0, inf], got -2.0')
case('cli/max-minutes-negative', cli_train('--max-minutes', '-1'), CLIUserError, 'max_minutes must be a finite number in [0, inf], got -1.0')
case('cli/ckpt-every-0', cli_train('--ckpt-every', '0'), CLIUserError, 'ckpt_every must be an integer in [1, inf], got 0')
case('cli/unknown-device', cli_train('--device', 'gpu7'), CLIUserError, "device must be 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, got 'gpu7'")
case('cli/out-is-a-file', cli_train(out=_file_as_out, exe=True), CLIUserError, "is a file, not a folder")
case('cli/resume-crafted-pickle', cli_train('--resume', out=lambda: _ckpt_dir('evil', evil_file), exe=True), CLIUserError, "checkpoint.pt': it contains objects other than tensors and plain containers, which could execute code")
case('cli/resume-truncated', cli_train('--resume', out=lambda: _ckpt_dir('trunc', truncated_ckpt)), CLIUserError, 'not a readable torch checkpoint (truncated or corrupt?)')
case('cli/checkpoint-exists', cli_train(out=lambda: _ckpt_dir('exists', truncated_ckpt)), CLIUserError, 'exists; pass --resume to continue it')
case('cli/demo-n-eval-0', CLI('--threads', '1', 'demo', '--n-eval', '0', '--out', 'demo_out'), CLIUserError, 'n_eval must be an integer in [1, 10000], got 0')
case('cli/bench-n-images-0', CLI('--threads', '1', 'bench', 'quality', '--quick', '--n-images', '0', '--out', 'bench_out', exe=True), CLIUserError, 'n_images must be an integer in [1, 10000], got 0')
case('cli/bench-unknown-generator', CLI('--threads', '1', 'bench', 'reconstruct', '--quick', '--generator', 'nope', '--out', 'bench_out'), CLIUserError, "generator must be a shipped generator (")
case('cli/bench-generator-not-reconstruct', CLI('--threads', '1', 'bench', 'quality', '--generator', 'vae-fmnist-8', '--out', 'bench_out'), CLIUserError, "generator, compile and precision apply to the 'reconstruct' benchmark only, got what='quality'")
case('cli/bench-unknown-precision', CLI('bench', 'reconstruct', '--precision', 'fp8'), CLIUserError, "argument --precision: invalid choice: 'fp8'")

CATALOGUE = C

def test_catalogue_size():
    fams = {p.id.split('/')[0] for p in CATALOGUE}
    assert len(CATALOGUE) >= 40, len(CATALOGUE)
    assert fams >= {'data', 'op', 'model', 'train', 'weights', 'solve', 'metric', 'base', 'cli'}, fams
    assert len({p.id for p in CATALOGUE}) == len(CATALOGUE), 'duplicate ids'

@pytest.mark.parametrize('fn,exc,frag', CATALOGUE)
def test_bad_input(fn, exc, frag):
    with pytest.raises(exc) as e: fn()
    msg = str(e.value)
    assert frag in msg, f"message {msg!r} lacks {frag!r}"
    assert 'Traceback' not in msg and len(msg) < 600, msg

def test_crafted_pickle_never_ran():
    "No entry that loaded the crafted pickle ran its command (checked after them: pytest keeps the file order)."
    assert evil_file().exists()
    assert not MARKER.exists(), "a crafted pickle executed code while it was loaded"

# ---------------------------------------------------------------- untrusted files: every load is weights-only

ROOT = Path(__file__).resolve().parent.parent

def _unsafe_loads(path):
    "Calls in a source file that could unpickle arbitrary objects: torch.load without weights_only=True, pickle.load(s), np.load(allow_pickle=True)."
    import ast
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute): continue
        f, owner = node.func.attr, getattr(node.func.value, 'id', None)
        kw = {k.arg: k.value for k in node.keywords}
        true = lambda k: isinstance(kw.get(k), ast.Constant) and kw[k].value is True
        if (owner == 'torch' and f == 'load' and not true('weights_only')) or (owner == 'pickle' and f in ('load', 'loads')) \
           or (owner in ('np', 'numpy') and f == 'load' and true('allow_pickle')):
            bad.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return bad

def test_every_torch_load_is_weights_only():
    files = sorted((ROOT/'genprior_nb').rglob('*.py')) + sorted((ROOT/'scripts').glob('*.py'))
    assert len(files) > 10, files
    bad = [b for f in files for b in _unsafe_loads(f)]
    assert bad == [], "loads that could run code:\n" + '\n'.join(bad)
    # the scanner itself finds the forms it looks for
    probe = WORK/'probe.py'
    probe.write_text("import torch, pickle\ntorch.load('a')\ntorch.load('a', weights_only=False)\ntorch.load('a', weights_only=True)\npickle.loads(b'')\n")
    assert [b.split(':')[1] for b in _unsafe_loads(probe)] == ['2', '3', '5']

def test_download_is_checksummed_and_atomic(tmp_path, monkeypatch):
    "A download with a wrong MD5 is not saved; a good one lands in place through a temporary file and a rename."
    import io, hashlib
    fname = 't10k-labels-idx1-ubyte.gz'
    payload = gzip.compress(b'\x00\x00\x08\x01' + (3).to_bytes(4, 'big') + bytes([1, 2, 3]))
    class Resp(io.BytesIO):
        def __enter__(self): return self
        def __exit__(self, *a): return False
    served = {'bytes': b'tampered' + payload}
    monkeypatch.setattr(D.urllib.request, 'urlopen', lambda url, timeout=None: Resp(served['bytes']))
    with pytest.raises(D.DataFileError, match=f'download of {fname} has a wrong MD5; not saved'): D._download(fname, tmp_path)
    assert list(tmp_path.iterdir()) == []
    size, md5, _ = D.FMNIST_FILES[fname]
    monkeypatch.setitem(D.FMNIST_FILES, fname, (size, md5, hashlib.md5(payload).hexdigest()))
    served['bytes'] = payload
    D._download(fname, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [fname] and (tmp_path/fname).read_bytes() == payload
