"""Train the DESYRE tight-frame U-Net shipped as genprior_nb/weights/desyre/<name>.pt and write its card.

    OMP_NUM_THREADS=1 nohup python scripts/train_desyre.py --steps 4000 > runs/desyre-fmnist.log 2>&1 &

Checkpoints to runs/<name>/checkpoint.pt and resumes from it when started again with the same settings. When done, the
weights (a state dict, atomically) go to genprior_nb/weights/desyre/<name>.pt and the card to <name>.json: the
architecture, the command (a `--max-minutes` budget is recorded as `--stop-at <steps done>`, so the card's command
rebuilds the same network anywhere), the training budget and wall time, the loss history, and the reconstruction PSNR
of D(E(x)) on the whole test split.
"""
import os, sys, json, shlex, argparse, platform
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, seed_everything, atomic_torch_save, atomic_write_bytes
from genprior_nb.data import load_dataset
from genprior_nb.metrics import psnr
from genprior_nb.pretrained import thin
from genprior_nb.desyre import TightFrameUNet, train_desyre, DESYRE_DIR

ROOT = Path(__file__).resolve().parents[1]

def recon_psnr(net, x, batch_size=500):
    "Per-image PSNR of D(E(x)) against x."
    with torch.no_grad(): return torch.cat([psnr(net.reconstruct(x[i:i + batch_size]), x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

def card_command(argv, steps_done, steps):
    """The command as the card records it: `--max-minutes X` becomes `--stop-at steps_done` when the budget ended the
    run; where files go (`--out-dir`, `--run-dir`) is left out, as it does not change the network."""
    argv = list(argv)
    for opt in ('--out-dir', '--run-dir'):
        while opt in argv: i = argv.index(opt); del argv[i:i + 2]
    if '--max-minutes' in argv:
        i = argv.index('--max-minutes'); del argv[i:i + 2]
        if steps_done < steps and '--stop-at' not in argv: argv += ['--stop-at', str(steps_done)]
    return shlex.join(['python', 'scripts/train_desyre.py', *argv])

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--name', default='desyre-fmnist'); ap.add_argument('--data', default='fmnist')
    ap.add_argument('--levels', type=int, default=2); ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--coef-channels', type=int, default=2)
    ap.add_argument('--steps', type=int, default=4000); ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--lr', type=float, default=1e-3); ap.add_argument('--l1-weight', type=float, default=1e-2)
    ap.add_argument('--weight-decay', type=float, default=1e-5); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--max-minutes', type=float, default=None); ap.add_argument('--stop-at', type=int, default=None)
    ap.add_argument('--out-dir', default=str(DESYRE_DIR), help='where <name>.pt and <name>.json go')
    ap.add_argument('--run-dir', default=None, help='checkpoint folder (default runs/<name>)')
    a = ap.parse_args(argv)
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    seed_everything(a.seed)
    x, _ = load_dataset(a.data, 'train'); xt, _ = load_dataset(a.data, 'test')
    net = TightFrameUNet(tuple(x.shape[1:]), a.levels, a.width, a.coef_channels)
    run = Path(a.run_dir) if a.run_dir else ROOT/'runs'/a.name; run.mkdir(parents=True, exist_ok=True)
    h = train_desyre(net, x, a.steps, a.batch_size, a.lr, a.l1_weight, a.weight_decay, a.seed, ckpt_path=run/'checkpoint.pt',
                     ckpt_every=250, resume=True, max_minutes=a.max_minutes, stop_at=a.stop_at)
    out = Path(a.out_dir); out.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(net.state_dict(), out/f'{a.name}.pt')
    p = recon_psnr(net.eval(), xt)
    hist = {k: v for k, v in h.items() if isinstance(v, list)}
    card = {'name': a.name, 'family': 'desyre', 'data': a.data, 'config': net.config(),
            'command': card_command(argv, h['steps_done'], a.steps),
            'coefficients': net.latent_dim, 'coefficients_per_pixel': round(net.latent_dim / x[0].numel(), 4),
            'parameters': sum(q.numel() for q in net.parameters()),
            'training': {'steps': a.steps, 'batch_size': a.batch_size, 'lr': a.lr, 'l1_weight': a.l1_weight,
                         'weight_decay': a.weight_decay, 'max_minutes': a.max_minutes, 'seed': a.seed,
                         'steps_done': h['steps_done'], 'wall_seconds': round(h['seconds'], 1), 'threads': torch.get_num_threads(),
                         'torch': torch.__version__, 'machine': platform.processor() or platform.machine()},
            'final_losses': {k: round(sum(v[-10:]) / len(v[-10:]), 6) for k, v in hist.items() if k != 'step' and v},
            'history': {k: thin(v) for k, v in hist.items()},
            'eval': {'test_images': len(xt), 'recon_psnr_mean': round(p.mean().item(), 3), 'recon_psnr_median': round(p.median().item(), 3),
                     'recon_psnr_first_200': round(p[:200].mean().item(), 3)}}
    atomic_write_bytes(out/f'{a.name}.json', json.dumps(card, indent=1).encode())
    print(f"{a.name}: {h['steps_done']} steps in {h['seconds']/60:.1f} min, test recon PSNR {card['eval']['recon_psnr_mean']} dB", flush=True)

if __name__ == '__main__':
    main(sys.argv[1:])
