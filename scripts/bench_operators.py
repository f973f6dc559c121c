#!/usr/bin/env python
"""Throughput of every forward operator A and its adjoint A^T on a batch of 28x28 images.

Compares the batched call with a naive per-image Python loop (the same operator called on one image at a time),
run in the same process on a subset. Usage: python scripts/bench_operators.py [--n 10000] [--loop-n 500] [--threads 1]
"""
import argparse, time
import torch
from genprior_nb.core import set_cpu_threads
from genprior_nb.operators import OPERATORS, make_operator

def best_time(f, repeat):
    "Best wall time of `repeat` calls of f (after one warm-up call)."
    f(); ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return min(ts)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=10_000, help='images in the batched call')
    p.add_argument('--loop-n', type=int, default=500, help='images in the per-image loop baseline')
    p.add_argument('--repeat', type=int, default=3, help='timed repetitions (best is reported)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: $GENPRIOR_THREADS or all cores)')
    p.add_argument('--dtype', choices=('float32', 'float64'), default='float32')
    a = p.parse_args()
    nthr = set_cpu_threads(a.threads); dt = getattr(torch, a.dtype)
    x = torch.rand(a.n, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=dt)
    print(f"torch {torch.__version__}, {nthr} thread(s), {a.dtype}, batch {a.n:,} images, loop baseline on {a.loop_n:,}")
    print(f"{'operator':>13} {'out shape':>12} {'A img/s':>12} {'A^T img/s':>12} {'A+A^T s':>8} {'loop img/s':>11} {'speed-up':>9}")
    with torch.no_grad():
        for name in OPERATORS:
            op = make_operator(name)
            y = op(x)
            tA = best_time(lambda: op(x), a.repeat)
            tAt = best_time(lambda: op.A_adjoint(y), a.repeat)
            xs, ys = x[:a.loop_n], y[:a.loop_n]
            def loop():
                for i in range(len(xs)):
                    op(xs[i:i+1]); op.A_adjoint(ys[i:i+1])
            tl = best_time(loop, 1)
            batched = a.n / (tA + tAt); looped = len(xs) / tl
            rate = lambda t: f"{a.n/t:>12,.0f}" if t > 1e-5 else f"{'(no-op)':>12}"
            ratio = f"{batched/looped:>8.0f}x" if tA + tAt > 1e-5 else f"{'-':>9}"
            print(f"{name:>13} {str(tuple(op.out_shape)):>12} {rate(tA)} {rate(tAt)} {tA+tAt:>8.3f} {looped:>11,.0f} {ratio}")

if __name__ == '__main__':
    main()
