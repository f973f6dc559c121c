"""Rank of a 2-process gloo job started by tests/test_distributed.py (plain processes, torchrun's environment variables):
the tiny AE, VAE and WGAN-GP trainings of ddp_cases.py; the uninterrupted 2-process `genprior train` reference run; the
same run again, which the test stops with a SIGINT to rank 1 only, resumed at once; and, once the test has killed the
torchrun job it started beside this one, the resumption of that job's run. Each rank prints one line: the files it
opened for writing (seen by a Python audit hook), a digest of its final weights and the step it was interrupted at."""
import sys, os, time, json, signal, hashlib
from pathlib import Path

writes = []
def _audit(event, args):
    if event == 'open':
        path, mode, flags = args
        if (mode is not None and any(c in mode for c in 'wax+')) or (mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            writes.append(str(path))
    elif event in ('os.rename', 'os.replace'): writes.append(str(args[1]))
    elif event in ('os.mkdir', 'os.remove', 'os.unlink'): writes.append(str(args[0]))
sys.addaudithook(_audit)

import torch
torch.set_num_threads(1)
from genprior_nb.train import init_distributed, close_distributed, dist_rank
from genprior_nb.core import safe_torch_load
from genprior_nb.cli import train_command
from ddp_cases import CASES, CLI_ARGS, run_case

out, killed_run = Path(sys.argv[1]), Path(sys.argv[2])
init_distributed('cpu')
rank, digests = dist_rank(), {}
for name in CASES:
    models = run_case(name, ckpt_path=out/f'{name}.pt')
    digests[name] = hashlib.sha256(b''.join(t.numpy().tobytes() for m in models for t in m.state_dict().values())).hexdigest()
train_command(**CLI_ARGS, out=out/'reference', ckpt_every=50, progress=False)
try:   # the test sends SIGINT to rank 1 once this run has written a checkpoint
    train_command(**CLI_ARGS, out=out/'interrupted', ckpt_every=1, progress=False)
    interrupted = None
except KeyboardInterrupt:   # every rank stops after the same step, with one checkpoint of it
    interrupted = safe_torch_load(out/'interrupted'/'checkpoint.pt')['step']
    train_command(**CLI_ARGS, out=out/'interrupted', ckpt_every=50, resume=True, progress=False)
signal.signal(signal.SIGINT, signal.SIG_IGN)   # a SIGINT that came too late fails the test through `interrupted`, not here
t0 = time.time()
while not (out/'go').exists():   # the test creates it once the other job has been killed
    if time.time() - t0 > 120: sys.exit('no go: the killed job did not end')
    time.sleep(0.02)
train_command(**CLI_ARGS, out=killed_run, ckpt_every=50, resume=True, progress=False)
close_distributed()
print('DDP-WORKER ' + json.dumps({'rank': rank, 'writes': writes, 'digests': digests, 'interrupted': interrupted}), flush=True)
