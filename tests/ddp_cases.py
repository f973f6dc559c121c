"The tiny trainings that tests/test_distributed.py runs on 2 processes (tests/ddp_worker.py) and on 1 process, side by side."
import torch
from genprior_nb.vae import AE, VAE, train_autoencoder
from genprior_nb.wgan import WGANGenerator, Critic, train_wgan

SHAPE = (1, 16, 16)
BATCH = 16      # the global batch: 2 processes x 8 images, or 1 process x 16
CASES = ('ae', 'vae', 'wgan')
# the `genprior train` run that is killed and resumed (the worker runs it uninterrupted as the reference)
CLI_ARGS = dict(model='vae', data='shapes', subset=64, width=8, batch_size=16, steps=200, seed=2, device='cpu')

def data():
    return torch.rand((64,) + SHAPE, generator=torch.Generator().manual_seed(0))

def bn_cancelled(G):
    """Names of the generator's entries that batch norm cancels in training: the bias of a convolution that feeds a batch
    norm (its exact gradient is 0: the batch norm subtracts the batch mean) and that batch norm's running mean."""
    net = G.decoder.net
    return [n for i in range(len(net) - 1) if isinstance(net[i], torch.nn.ConvTranspose2d) and isinstance(net[i + 1], torch.nn.BatchNorm2d)
            for n in (f'decoder.net.{i}.bias', f'decoder.net.{i + 1}.running_mean')]

def run_case(name, ckpt_path=None, steps=4):
    "Train one tiny model from seed 0 with a global batch of 16; returns its modules."
    torch.manual_seed(0)
    kw = dict(steps=steps, batch_size=BATCH, seed=1, ckpt_path=ckpt_path, ckpt_every=2, progress=False, log_every=1)
    if name == 'wgan':   # the critic's loss has the gradient penalty, the generator has batch norm
        G, D = WGANGenerator(4, 8, SHAPE), Critic(8, SHAPE)
        train_wgan(G, D, data(), n_critic=2, lr=1e-3, **kw)
        return [G, D]
    m = (AE if name == 'ae' else VAE)(4, 8, image_shape=SHAPE)
    train_autoencoder(m, data(), **kw)   # the default learning rate, 2e-3
    return [m]
