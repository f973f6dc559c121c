"""Train the generators shipped in genprior_nb/weights (run in the background with nohup; resumable).

    python scripts/train_pretrained.py vae-fmnist-8 ae-fmnist-8 ...   # names as in genprior_nb.pretrained
    python scripts/train_pretrained.py --finish vae-shapes-8          # stop a run early: weights from its checkpoint

Each run checkpoints to runs/<name>.ckpt (atomically) and, when done, writes the model's state dict to
genprior_nb/weights/<name>.pt and a training record to runs/<name>.train.json; the model card with evaluation
numbers is then written by `genprior_nb.pretrained.write_card`.
"""
import sys, json, time, os, platform
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, atomic_torch_save, atomic_write_bytes
from genprior_nb.data import load_dataset
from genprior_nb.vae import AE, VAE, train_autoencoder
from genprior_nb.wgan import WGANGenerator, Critic, train_wgan

ROOT = Path(__file__).resolve().parents[1]
# name -> (family, data, constructor kwargs, training kwargs); wall-time caps sized for a shared 2-core CPU, one thread per run
PLANS = {
    'vae-fmnist-8':  ('vae', 'fmnist', dict(latent_dim=8, width=64, kl_weight=0.05), dict(steps=4000, batch_size=128, lr=2e-3, max_minutes=40)),
    'ae-fmnist-8':   ('ae', 'fmnist', dict(latent_dim=8, width=64), dict(steps=3500, batch_size=128, lr=2e-3, max_minutes=35)),
    # shapes: 89% of the pixels are 0, the squared error through a saturated sigmoid stops learning (two runs ended
    # at the black image); the Bernoulli likelihood keeps a gradient (see nbs/02_vae.ipynb)
    'vae-shapes-8':  ('vae', 'shapes', dict(latent_dim=8, width=64, kl_weight=0.05, likelihood='bernoulli'), dict(steps=8000, batch_size=128, lr=2e-3, max_minutes=42)),
    'wgan-fmnist-8': ('wgan', 'fmnist', dict(latent_dim=8, width=64), dict(steps=6000, batch_size=64, max_minutes=85, critic_width=32)),
    'wgan-shapes-8': ('wgan', 'shapes', dict(latent_dim=8, width=64), dict(steps=3000, batch_size=64, max_minutes=40, critic_width=32)),  # resumed from step 801 in a second 40-minute segment
}

def train(name, seed=0, finish=False):
    family, data_name, mk, tk = PLANS[name]
    tk = dict(tk); critic_width = tk.pop('critic_width', None)
    if finish: tk['max_minutes'] = 0  # resume, run one step, write the weights: ends a run cut short by hand
    torch.manual_seed(seed)
    x = load_dataset(data_name, 'train')[0]
    ckpt = ROOT/'runs'/f'{name}.ckpt'
    t0 = time.time()
    if family == 'wgan':
        model, critic = WGANGenerator(**mk), Critic(critic_width)
        hist = train_wgan(model, critic, x, seed=seed, ckpt_path=ckpt, resume=True, **tk)
    else:
        model = (VAE if family == 'vae' else AE)(**mk)
        hist = train_autoencoder(model, x, seed=seed, ckpt_path=ckpt, resume=True, **tk)
    model.eval()
    atomic_torch_save(model.state_dict(), ROOT/'genprior_nb'/'weights'/f'{name}.pt')
    if family == 'wgan': atomic_torch_save(critic.state_dict(), ROOT/'runs'/f'{name}.critic.pt')
    record = {'name': name, 'family': family, 'data': data_name, 'config': model.config(), 'train': {**tk, 'seed': seed},
              'steps_done': hist['steps_done'], 'train_seconds': round(hist['seconds'], 1),
              'threads': torch.get_num_threads(), 'torch': torch.__version__, 'machine': platform.processor() or platform.machine(),
              'history': {k: v for k, v in hist.items() if isinstance(v, list)}}
    if family == 'wgan': record['critic_width'] = critic_width
    atomic_write_bytes(ROOT/'runs'/f'{name}.train.json', json.dumps(record).encode())
    print(f'{name}: {hist["steps_done"]} steps in {hist["seconds"]:.0f}s (wall {time.time()-t0:.0f}s)', flush=True)

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    finish = '--finish' in sys.argv
    for n in sys.argv[1:]:
        if n != '--finish': train(n, finish=finish)
