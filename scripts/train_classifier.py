"""Train the Fashion-MNIST classifier shipped in genprior_nb/weights/classifier/ (used by genprior_nb.mode_collapse).

    OMP_NUM_THREADS=1 nohup python scripts/train_classifier.py > runs/classifier.log 2>&1 &

Seeded, one CPU thread, a few minutes: Adam with a one-cycle learning rate, random horizontal flips as the only
augmentation. Writes the state dict (tensors only, atomically) to classifier-fmnist.pt and its card to
classifier-fmnist.json (architecture, training budget, seed, wall time, test and per-class accuracy).
"""
import os, json, time, platform, argparse
from pathlib import Path
import torch
import torch.nn.functional as F
from genprior_nb.core import seed_everything, set_cpu_threads, atomic_torch_save, atomic_write_bytes
from genprior_nb.data import load_fashion_mnist, CLASSES
from genprior_nb.mode_collapse import FMNISTClassifier, CLASSIFIER_DIR, CLASSIFIER_NAME

def evaluate(model, x, y, batch_size=1000):
    model.eval(); pred = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size): pred.append(model(x[i:i + batch_size]).argmax(1))
    pred = torch.cat(pred)
    per_class = [(pred[y == c] == c).float().mean().item() for c in range(10)]
    return (pred == y).float().mean().item(), per_class

def main(epochs=6, batch_size=128, lr=3e-3, seed=0, out_dir=CLASSIFIER_DIR):
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 1)))
    gen = seed_everything(seed)
    x, y = load_fashion_mnist('train'); xt, yt = load_fashion_mnist('test')
    model = FMNISTClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = len(x) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs*steps_per_epoch)
    t0, history = time.time(), []
    for ep in range(epochs):
        model.train(); perm = torch.randperm(len(x), generator=gen); tot = 0.
        for b in range(steps_per_epoch):
            idx = perm[b*batch_size:(b + 1)*batch_size]
            xb, yb = x[idx], y[idx]
            flip = torch.rand(len(xb), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(); loss.backward(); opt.step(); sched.step(); tot += loss.item()
        acc, _ = evaluate(model, xt, yt)
        history.append({'epoch': ep + 1, 'train_loss': round(tot/steps_per_epoch, 4), 'test_acc': round(acc, 4), 'seconds': round(time.time() - t0, 1)})
        print(history[-1], flush=True)
    wall = time.time() - t0
    acc, per_class = evaluate(model, xt, yt)
    out_dir = Path(out_dir)
    atomic_torch_save(model.state_dict(), out_dir/f'{CLASSIFIER_NAME}.pt')
    card = {'name': CLASSIFIER_NAME, 'data': 'fmnist', 'config': model.config(),
            'architecture': '3 x [conv3x3 (no bias) + BN + ReLU + maxpool2] (32, 64, 64 ch) -> dropout -> linear 576->128 + BN + ReLU (embedding) -> dropout -> linear 128->10',
            'parameters': sum(p.numel() for p in model.parameters()),
            'training': {'epochs': epochs, 'batch_size': batch_size, 'optimizer': 'Adam', 'schedule': 'OneCycle', 'max_lr': lr,
                         'augmentation': 'random horizontal flip', 'seed': seed, 'wall_seconds': round(wall, 1),
                         'threads': torch.get_num_threads(), 'torch': torch.__version__, 'machine': platform.processor() or platform.machine()},
            'history': history,
            'eval': {'test_images': len(xt), 'test_accuracy': round(acc, 4),
                     'per_class_accuracy': {c: round(a, 4) for c, a in zip(CLASSES, per_class)}}}
    atomic_write_bytes(out_dir/f'{CLASSIFIER_NAME}.json', json.dumps(card, indent=1).encode())
    print(f'test accuracy {acc:.4f} after {epochs} epochs in {wall:.0f}s', flush=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=6); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--lr', type=float, default=3e-3); ap.add_argument('--out-dir', default=str(CLASSIFIER_DIR))
    a = ap.parse_args()
    main(epochs=a.epochs, lr=a.lr, seed=a.seed, out_dir=a.out_dir)
