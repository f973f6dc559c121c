"""Retrain validity family members alone, with their manifest commands, to time them on a quiet machine and check that
the weights come back bitwise (nbs/23_validity.ipynb reads the result).

    OMP_NUM_THREADS=1 nohup .venv/bin/python scripts/validity_timing.py wgan-k32 > runs/validity_timing.out 2>&1 &

Writes nbs/benchmarks/validity/timing.json (one entry per member, merged with what is there): wall-clock and CPU seconds
of the `genprior train` process, the load average when it started, and whether model.pt equals the manifest's MD5.
Run it with nothing else on the machine: the numbers are only as quiet as the machine was.
"""
import os, sys, json, time, shlex, resource, subprocess
from pathlib import Path
import torch
from genprior_nb.core import read_csv, md5sum, atomic_write_bytes
from genprior_nb.bench import machine_info

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT/'nbs'/'benchmarks'/'validity'

def time_member(row:dict, out_root:Path) -> dict:
    "Run a member's `genprior train` command into a fresh folder; its wall and CPU seconds and whether the weights match."
    cmd = shlex.split(row['command'])
    out = out_root/row['name']
    cmd[cmd.index('--out') + 1] = str(out)
    if (out/'checkpoint.pt').exists() or (out/'model.pt').exists():
        raise SystemExit(f"{out} holds a previous run: remove it first (a resumed run would not be timed whole)")
    load = os.getloadavg()[0]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    subprocess.run([sys.executable, '-m', 'genprior_nb.cli', *cmd[1:]], check=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'))
    wall, after = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(name=row['name'], wall_s=round(wall, 1), cpu_s=round(cpu, 1), steps=int(json.loads(row['train_settings'])['steps']),
                stop_at=row['stop_at'] or None, load_at_start=round(load, 2), weights_equal=md5sum(out/'model.pt') == row['weights_md5'],
                stored_train_seconds=row['train_seconds'], machine=machine_info(torch.device('cpu')),
                date=time.strftime('%Y-%m-%d'))

if __name__ == '__main__':
    torch.set_num_threads(1)   # as the timed process runs: machine_info reports this process's threads
    rows = {r['name']: r for r in read_csv(RES/'manifest.csv')}
    names = sys.argv[1:] or [max((r for r in rows.values() if r['role'] == 'final'), key=lambda r: r['train_seconds'])['name']]
    unknown = [n for n in names if n not in rows]
    if unknown: raise SystemExit(f"not in the manifest: {unknown}; members: {', '.join(rows)}")
    f = RES/'timing.json'
    for n in names:
        res = time_member(rows[n], ROOT/'runs'/'validity-timing')
        done = json.loads(f.read_text()) if f.is_file() else {}
        done[n] = res
        atomic_write_bytes(f, json.dumps(done, indent=1).encode())
        print(json.dumps(res), flush=True)
