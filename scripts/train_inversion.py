"""Train the inversion encoder shipped as genprior_nb/weights/amortised/inv-<generator>.pt and write its card.

    OMP_NUM_THREADS=1 nohup python scripts/train_inversion.py --generator wgan-fmnist-8 > runs/inv-wgan-fmnist-8.log 2>&1 &

Checkpoints to runs/inv-<generator>/checkpoint.pt and resumes from it when started again with the same settings. When
done, the weights (a state dict, atomically) go to genprior_nb/weights/amortised/inv-<generator>.pt and the card to
inv-<generator>.json: the architecture, the command (a `--max-minutes` budget is recorded as `--stop-at <steps done>`),
the training budget and wall time, the loss history, and two checks on held-out data: the relative image error
||G(E(G(z))) - G(z)||^2 / ||G(z)||^2 on 1,000 fresh prior samples, and the PSNR of G(E(x)) on the first 1,000 test
images of the generator's data set (how far one encoder pass gets without any latent search).
"""
import os, sys, json, shlex, argparse, platform
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, seed_everything, atomic_torch_save, atomic_write_bytes
from genprior_nb.data import load_dataset
from genprior_nb.metrics import psnr
from genprior_nb.pretrained import thin, load_pretrained, model_card
from genprior_nb.amortised import InversionEncoder, train_inversion_encoder, AMORTISED_DIR

ROOT = Path(__file__).resolve().parents[1]

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--generator', default='vae-fmnist-8', help='a shipped generator')
    ap.add_argument('--width', type=int, default=64); ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--batch-size', type=int, default=64); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--noise', type=float, default=0.1); ap.add_argument('--blur', type=float, default=1.5)
    ap.add_argument('--image-weight', type=float, default=1.0); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--max-minutes', type=float, default=None); ap.add_argument('--stop-at', type=int, default=None)
    ap.add_argument('--out-dir', default=str(AMORTISED_DIR)); ap.add_argument('--run-dir', default=None)
    a = ap.parse_args(argv)
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    seed_everything(a.seed)
    G = load_pretrained(a.generator); name = f'inv-{a.generator}'
    E = InversionEncoder(G.latent_dim, tuple(G.image_shape), a.width)
    run = Path(a.run_dir) if a.run_dir else ROOT/'runs'/name; run.mkdir(parents=True, exist_ok=True)
    h = train_inversion_encoder(E, G, a.steps, a.batch_size, a.lr, a.noise, a.blur, a.image_weight, a.seed,
                                ckpt_path=run/'checkpoint.pt', ckpt_every=100, resume=True, max_minutes=a.max_minutes, stop_at=a.stop_at)
    out = Path(a.out_dir); out.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(E.state_dict(), out/f'{name}.pt')
    with torch.no_grad():
        z = torch.randn(1000, G.latent_dim, generator=torch.Generator().manual_seed(12345)); xg = G(z)
        rel = float((G(E(xg)) - xg).pow(2).sum() / xg.pow(2).sum())
        data = model_card(a.generator)['data']
        xt = load_dataset(data, 'test')[0][:1000]
        p = psnr(G(E(xt)).clamp(0, 1), xt)
    argv = list(argv)
    for opt in ('--out-dir', '--run-dir'):
        while opt in argv: i = argv.index(opt); del argv[i:i + 2]
    if '--max-minutes' in argv:
        i = argv.index('--max-minutes'); del argv[i:i + 2]
        if h['steps_done'] < a.steps and '--stop-at' not in argv: argv += ['--stop-at', str(h['steps_done'])]
    hist = {k: v for k, v in h.items() if isinstance(v, list)}
    card = {'name': name, 'family': 'inversion_encoder', 'generator': a.generator, 'data': data, 'config': E.config(),
            'command': shlex.join(['python', 'scripts/train_inversion.py', *argv]),
            'parameters': sum(q.numel() for q in E.parameters()),
            'training': {'steps': a.steps, 'batch_size': a.batch_size, 'lr': a.lr, 'noise': a.noise, 'blur': a.blur,
                         'image_weight': a.image_weight, 'max_minutes': a.max_minutes, 'seed': a.seed, 'steps_done': h['steps_done'],
                         'wall_seconds': round(h['seconds'], 1), 'threads': torch.get_num_threads(), 'torch': torch.__version__,
                         'machine': platform.processor() or platform.machine()},
            'final_losses': {k: round(sum(v[-10:]) / len(v[-10:]), 6) for k, v in hist.items() if k != 'step' and v},
            'history': {k: thin(v) for k, v in hist.items()},
            'eval': {'prior_samples': 1000, 'relative_image_error': round(rel, 5), 'test_images': len(xt),
                     'one_pass_psnr_mean': round(p.mean().item(), 3)}}
    atomic_write_bytes(out/f'{name}.json', json.dumps(card, indent=1).encode())
    print(f"{name}: {h['steps_done']} steps in {h['seconds']/60:.1f} min, relative image error {rel:.4f}, "
          f"one-pass test PSNR {card['eval']['one_pass_psnr_mean']} dB", flush=True)

if __name__ == '__main__':
    main(sys.argv[1:])
