"""The GPU measurements of issue 19 in one short run (about 6-8 minutes on one H200; sections that would start after
`--budget` seconds are skipped and say so).

What it measures, on the same images and problem as `genprior bench reconstruct` (Fashion-MNIST evaluation subset,
compressed sensing m = 150, noise 0.05; `csgm` with its defaults, 5 restarts x 300 steps pruned after 20%):
  1. the device's matrix throughput: 8192^3 products in fp32 (TF32 off), TF32 and bf16;
  2. `csgm` on `--images` images (2,048) for the VAE and the WGAN-GP in fp32 (TF32 off everywhere, the PSNR reference),
     fp32 with the unfused Adam (the effect of fused Adam), TF32 (the CUDA default) and bf16, eager: images/s, PSNR and
     its difference to fp32, TFLOP/s, the fraction of the fp32 and bf16 matmul throughput, the chunk the device-aware
     default chose, peak memory;
  3. host synchronisations inside the solver loop (torch.cuda.set_sync_debug_mode): the count must not grow with the steps;
  4. `bench_reconstruct` as `genprior bench reconstruct --device cuda` runs it (both generators, naive protocol on
     `--n-reference` images, batched on those, on 64 and on 2,048 images);
  5. training throughput (images/s) of the VAE and the WGAN-GP at batch sizes 128 to 8,192, channels-last at 2,048, and
     the VAE's reconstruction PSNR after a fixed number of epochs at three batch sizes (learning rate fixed and scaled
     with the square root of the batch size);
  6. `csgm` compiled (`compile=True`: torch.compile, CUDA graphs) in TF32 and bf16, compilation excluded from the timing;
  7. TV (Chambolle-Pock) and FISTA (l1-DCT) on the same images, eager and compiled.

Results go to OUT: gpu_check.json (machine, peaks, verdicts, sync counts, errors), gpu_csgm.csv, gpu_reconstruct.csv,
gpu_train.csv, gpu_baselines.csv; scripts/gpu_check.sh runs it on the device machine and says where to copy them.
`--quick` runs a tiny version (on the CPU too) as a smoke test of the script itself.
"""
import argparse, json, math, shutil, sys, tempfile, time, traceback, warnings
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from genprior_nb.core import write_csv, atomic_write_bytes
from genprior_nb.data import eval_images, load_fashion_mnist
from genprior_nb.operators import CompressedSensing, RandomInpainting
from genprior_nb.pretrained import load_pretrained
from genprior_nb.latent_opt import csgm, default_chunk, problem_bytes
from genprior_nb.baselines import tv_reconstruct, lasso
from genprior_nb.metrics import psnr
from genprior_nb.bench import machine_info, matmul_gflops, pass_flops, bench_reconstruct, _sync
from genprior_nb.vae import VAE, train_autoencoder
from genprior_nb.wgan import WGANGenerator, Critic, train_wgan

CSGM_COLUMNS = ('generator', 'config', 'images', 'seconds', 'images_per_s', 'psnr', 'psnr_minus_fp32', 'passes_per_image',
                'tflops', 'fp32_fraction', 'bf16_fraction', 'chunk', 'precision', 'compile', 'fused', 'compile_seconds',
                'peak_memory_gb', 'error')
TRAIN_COLUMNS = ('model', 'batch_size', 'channels_last', 'steps', 'seconds', 'images_per_s', 'epochs', 'lr', 'recon_psnr', 'error')
BASE_COLUMNS = ('method', 'compile', 'images', 'seconds', 'images_per_s', 'psnr', 'max_abs_diff_to_eager', 'compile_seconds', 'error')

class Run:
    "Timing budget, result tables and the JSON record, written after every section."
    def __init__(self, out, budget):
        self.out, self.budget, self.t0 = Path(out), budget, time.time()
        self.info, self.tables = {'sections': {}, 'errors': []}, {'gpu_csgm.csv': [], 'gpu_train.csv': [], 'gpu_baselines.csv': []}
    def left(self): return self.budget - (time.time() - self.t0)
    def section(self, name, need_s, fn):
        "Run one section unless fewer than `need_s` seconds of the budget are left; record its time or its error."
        if self.left() < need_s:
            print(f"\n== {name}: skipped ({self.left():.0f} s of the budget left, needs about {need_s} s)", flush=True)
            self.info['sections'][name] = 'skipped'; self.save(); return
        print(f"\n== {name} ({time.time() - self.t0:.0f} s in)", flush=True); t = time.time()
        try: fn(); self.info['sections'][name] = round(time.time() - t, 1)
        except Exception as e:
            traceback.print_exc(); self.info['sections'][name] = f'error: {type(e).__name__}: {e}'
            self.info['errors'].append(f'{name}: {type(e).__name__}: {e}')
        self.save()
    def save(self):
        cols = {'gpu_csgm.csv': CSGM_COLUMNS, 'gpu_train.csv': TRAIN_COLUMNS, 'gpu_baselines.csv': BASE_COLUMNS}
        for f, rows in self.tables.items():
            if rows: write_csv(self.out/f, rows, cols[f])
        self.info['elapsed_s'] = round(time.time() - self.t0, 1)
        atomic_write_bytes(self.out/'gpu_check.json', json.dumps(self.info, indent=1, default=str).encode())

def timed(dev, fn):
    _sync(dev); t = time.perf_counter(); r = fn(); _sync(dev); return r, time.perf_counter() - t

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT/'nbs'/'benchmarks'/'gpu'))
    ap.add_argument('--images', type=int, default=2048)
    ap.add_argument('--n-reference', type=int, default=2, help='images of the naive protocol per generator')
    ap.add_argument('--budget', type=float, default=480, help='seconds after which no section starts')
    ap.add_argument('--quick', action='store_true', help='tiny settings (a smoke test of this script; runs on a CPU)')
    a = ap.parse_args()
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if dev.type != 'cuda' and not a.quick: sys.exit('no CUDA device: run with --quick for a smoke test on the CPU')
    q = a.quick
    n = 8 if q else a.images
    solver = dict(restarts=2, steps=20) if q else {}
    comp = 'aot_eager' if q else True
    run = Run(a.out, a.budget)
    run.info.update(machine=machine_info(dev), torch=torch.__version__, images=n, quick=q,
                    cudnn_tf32_default=torch.backends.cudnn.allow_tf32, matmul_tf32_default=torch.backends.cuda.matmul.allow_tf32)
    print(run.info['machine'], flush=True)
    peaks = {}
    def sec_peaks():
        for p in ('fp32', 'tf32', 'bf16'): peaks[p] = matmul_gflops(1024 if q else 8192, device=dev, precision=p)
        run.info['matmul_tflops'] = {p: round(v / 1e3, 2) for p, v in peaks.items()}
        print('matmul TFLOP/s', run.info['matmul_tflops'], flush=True)
    run.section('matmul peaks', 5, sec_peaks)

    x = eval_images(n)[0].to(dev)
    op = CompressedSensing(150, seed=0).to(dev); y = op.measure(x, 0.05, seed=0)
    gens = {g: load_pretrained(g, dev) for g in ('vae-fmnist-8', 'wgan-fmnist-8')}
    flops = {g: pass_flops(G, op) for g, G in gens.items()}
    fp32_psnr = {}
    def csgm_row(gname, config, kw, strict=False, warm=False):
        "Time csgm on the n images in one configuration (after an untimed run when compiling) and record a row."
        G, row = gens[gname], dict(generator=gname, config=config, images=n)
        old = torch.backends.cudnn.allow_tf32
        if strict: torch.backends.cudnn.allow_tf32 = False   # fp32 convolutions too: the PSNR reference
        try:
            if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)
            if warm:
                _, row['compile_seconds'] = timed(dev, lambda: csgm(y, op, G, seed=0, **solver, **kw))
            res, sec = timed(dev, lambda: csgm(y, op, G, seed=0, **solver, **kw))
            r, s = res.extra['settings'], solver.get('steps', 300)
            k = math.ceil(0.2 * s); passes = solver.get('restarts', 5) * k + s - k
            p = psnr(res.x, x).mean().item()
            if config == 'fp32': fp32_psnr[gname] = p
            gf = n * passes * flops[gname] / sec / 1e9
            row.update(seconds=round(sec, 3), images_per_s=n / sec, psnr=p, psnr_minus_fp32=p - fp32_psnr.get(gname, math.nan),
                       passes_per_image=passes, tflops=gf / 1e3, fp32_fraction=gf / peaks.get('fp32', math.nan),
                       bf16_fraction=gf / peaks.get('bf16', math.nan), **{c: r.get(c) for c in ('chunk', 'precision', 'compile', 'fused')},
                       peak_memory_gb=torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == 'cuda' else None)
        except Exception as e:
            traceback.print_exc(); row['error'] = f'{type(e).__name__}: {e}'; run.info['errors'].append(f'csgm {gname} {config}: {e}')
        finally: torch.backends.cudnn.allow_tf32 = old
        run.tables['gpu_csgm.csv'].append(row); run.save()   # kept even if the call is stopped later
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

    def sec_eager():
        for gname, G in gens.items():
            csgm(y[:64], op, G, **solver)   # warm-up: CUDA context, cuBLAS/cuDNN handles and plans
            run.info.setdefault('default_chunk', {})[gname] = default_chunk(G, op)
            run.info.setdefault('problem_bytes', {})[gname] = problem_bytes(G, op)
            csgm_row(gname, 'fp32', dict(precision='fp32'), strict=True)
            csgm_row(gname, 'fp32, Adam not fused', dict(precision='fp32', fused=False), strict=True)   # the effect of fused Adam
            csgm_row(gname, 'tf32', {})   # the CUDA default
            csgm_row(gname, 'bf16', dict(precision='bf16'))
        run.info['tf32_psnr_change_db'] = {r['generator']: r.get('psnr_minus_fp32') for r in run.tables['gpu_csgm.csv'] if r['config'] == 'tf32'}
    run.section('csgm eager: fp32 / tf32 / bf16, both generators', 60, sec_eager)

    def sec_syncs():
        if dev.type != 'cuda': run.info['syncs'] = 'no CUDA device'; return
        G, counts = gens['vae-fmnist-8'], {}
        for steps in (40, 80):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter('always'); torch.cuda.set_sync_debug_mode('warn')
                try: csgm(y[:64], op, G, steps=steps, restarts=5)
                finally: torch.cuda.set_sync_debug_mode('default')
            counts[steps] = sum('synchroniz' in str(m.message).lower() for m in w)
        run.info['syncs'] = {'csgm 40 steps': counts[40], 'csgm 80 steps': counts[80], 'grows_with_steps': counts[80] > counts[40]}
        print('host syncs in csgm:', run.info['syncs'], flush=True)
    run.section('host synchronisations in the csgm loop', 20, sec_syncs)

    def sec_bench():
        tmp = Path(tempfile.mkdtemp())
        bench_reconstruct(tmp, n_images=n, quick=q, device=str(dev), n_reference=a.n_reference)
        shutil.copy(tmp/'reconstruct.csv', run.out/'gpu_reconstruct.csv')
    run.section('bench_reconstruct (genprior bench reconstruct --device cuda)', 150, sec_bench)

    def sec_train():
        data = load_fashion_mnist('train')[0][:(512 if q else 60_000)].to(dev)
        test = eval_images(64 if q else 1024)[0].to(dev)
        sizes = (16, 32) if q else (128, 512, 2048, 8192)
        rows = run.tables['gpu_train.csv']
        def tput(model_name, bs, cl):
            row = dict(model=model_name, batch_size=bs, channels_last=cl)
            try:
                steps = 3 if q else 40
                torch.manual_seed(0)
                if model_name == 'vae':
                    m = VAE(8, 64).to(dev); f = lambda s: train_autoencoder(m, data, s, bs, progress=False, channels_last=cl)
                else:
                    G, D = WGANGenerator(8, 64).to(dev), Critic(64).to(dev)
                    f = lambda s: train_wgan(G, D, data, s, bs, progress=False, channels_last=cl)
                f(2)   # warm-up
                _, sec = timed(dev, lambda: f(steps))
                per_step = bs * (5 if model_name == 'wgan' else 1)   # the critic sees n_critic = 5 real batches per generator step
                row.update(steps=steps, seconds=round(sec, 3), images_per_s=steps * per_step / sec)
            except Exception as e: row['error'] = f'{type(e).__name__}: {e}'; run.info['errors'].append(f'train {model_name} {bs}: {e}')
            rows.append(row); run.save(); print(row, flush=True)
        for model_name in ('vae', 'wgan'):
            for bs in sizes: tput(model_name, bs, False)
            tput(model_name, sizes[-2], True)
        epochs = 1 if q else 3
        for bs in ((16, 32) if q else (128, 1024, 8192)):
            for lr in sorted({2e-3, 2e-3 * math.sqrt(bs / (16 if q else 128))}):
                row = dict(model='vae', batch_size=bs, channels_last=False, epochs=epochs, lr=lr)
                try:
                    torch.manual_seed(0); m = VAE(8, 64).to(dev); steps = epochs * len(data) // bs
                    _, sec = timed(dev, lambda: train_autoencoder(m, data, steps, bs, lr=lr, progress=False, kl_warmup=min(500, steps // 4)))
                    with torch.no_grad(): rp = psnr(m.reconstruct(test).clamp(0, 1), test).mean().item()
                    row.update(steps=steps, seconds=round(sec, 3), images_per_s=steps * bs / sec, recon_psnr=rp)
                except Exception as e: row['error'] = f'{type(e).__name__}: {e}'; run.info['errors'].append(f'train psnr {bs}: {e}')
                rows.append(row); run.save(); print(row, flush=True)
    run.section('training throughput and PSNR after fixed epochs', 100, sec_train)

    def sec_compiled():   # the most promising first; each needs a compilation per shape (before and after pruning)
        for gname, config, kw in (('vae-fmnist-8', 'bf16+compile', dict(precision='bf16', compile=comp)),
                                  ('wgan-fmnist-8', 'bf16+compile', dict(precision='bf16', compile=comp)),
                                  ('vae-fmnist-8', 'tf32+compile', dict(compile=comp)),
                                  ('wgan-fmnist-8', 'tf32+compile', dict(compile=comp))):
            if run.left() < 60: print(f"  {gname} {config}: skipped ({run.left():.0f} s left)", flush=True); continue
            csgm_row(gname, config, kw, warm=True)
    run.section('csgm compiled (CUDA graphs): bf16 / tf32', 70, sec_compiled)

    def sec_baselines():
        inp = RandomInpainting(0.25, seed=0).to(dev); yi = inp.measure(x, 0.05, seed=0)
        rows = run.tables['gpu_baselines.csv']
        for method, f in (('tv', lambda **k: tv_reconstruct(yi, inp, 0.03, n_iter=200 if q else 2000, tol=1e-4, **k)),
                          ('l1_dct', lambda **k: lasso(y, op, 0.02, 'dct', n_iter=100 if q else 300, tol=1e-5, **k))):
            ref = None
            for c in (False, comp):
                row = dict(method=method, compile=str(c), images=n)
                try:
                    if c: _, row['compile_seconds'] = timed(dev, lambda: f(compile=c))
                    xr, sec = timed(dev, lambda: f(compile=c))
                    if ref is None: ref = xr
                    row.update(seconds=round(sec, 3), images_per_s=n / sec, psnr=psnr(xr.clamp(0, 1), x).mean().item(),
                               max_abs_diff_to_eager=(xr - ref).abs().max().item())
                except Exception as e: row['error'] = f'{type(e).__name__}: {e}'; run.info['errors'].append(f'{method} compile={c}: {e}')
                rows.append(row); run.save(); print(row, flush=True)
    run.section('TV and FISTA: eager and compiled', 60, sec_baselines)

    # verdicts: the goals
    rows = [r for r in run.tables['gpu_csgm.csv'] if not r.get('error')]
    goal = {}
    for g in gens:
        ok = [r for r in rows if r['generator'] == g and abs(r.get('psnr_minus_fp32', math.inf)) <= 0.1]
        best = max(ok, key=lambda r: r['images_per_s'], default=None)
        goal[g] = None if best is None else dict(config=best['config'], images_per_s=round(best['images_per_s']),
                                                  psnr_minus_fp32=round(best['psnr_minus_fp32'], 3),
                                                  meets_5000=best['images_per_s'] >= 5000)
    run.info['goal_5000_images_per_s_at_equal_psnr'] = goal
    run.info['tf32_default_ok'] = {g: (v is not None and abs(v) <= 0.05) for g, v in run.info.get('tf32_psnr_change_db', {}).items()}
    run.save()
    print('\n' + json.dumps({k: run.info[k] for k in ('goal_5000_images_per_s_at_equal_psnr', 'tf32_default_ok', 'sections', 'errors')},
                            indent=1, default=str))
    print(f"results in {run.out} after {time.time() - run.t0:.0f} s")

if __name__ == '__main__': main()
