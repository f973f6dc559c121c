"""csgm in bf16 against fp32 on this CPU, same process: nbs/benchmarks/reconstruct_bf16.csv (+ _run.json, the machine).

    OMP_NUM_THREADS=1 python scripts/bench_bf16_cpu.py     # on a quiet machine: about 10 minutes on one CPU thread

`bench_reconstruct` twice, fp32 then bf16 (the generator's passes under bf16 autocast; codes, Adam and the operator stay
fp32), for both Fashion-MNIST generators on the same 256 images (CS m = 150, noise 0.05). Each run times the naive fp32
reference protocol first, so both rows' speed-ups are against the same protocol. On a CPU whose bf16 matmul is much
faster than its fp32 one (AMX), bf16 passes run several times faster; elsewhere bf16 may be slower.
"""
import json, time
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads, write_csv, atomic_write_bytes
from genprior_nb.bench import bench_reconstruct, machine_info, RECONSTRUCT_COLUMNS

OUT = Path(__file__).resolve().parents[1]/'nbs'/'benchmarks'

if __name__ == '__main__':
    set_cpu_threads(1)
    t0, rows = time.time(), []
    for precision in ('fp32', 'bf16'):
        rows += bench_reconstruct(f'out/bench_{precision}', generator=['vae-fmnist-8', 'wgan-fmnist-8'], precision=precision)
    write_csv(OUT/'reconstruct_bf16.csv', rows, RECONSTRUCT_COLUMNS)
    atomic_write_bytes(OUT/'reconstruct_bf16_run.json', json.dumps(dict(
        machine=machine_info(torch.device('cpu')), cpu_capability=torch.backends.cpu.get_cpu_capability(),
        amx=any('amx_bf16' in l for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('flags')),
        command='OMP_NUM_THREADS=1 python scripts/bench_bf16_cpu.py', seconds=round(time.time() - t0, 1)), indent=1).encode())
