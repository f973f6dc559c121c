"Tests of the `genprior` console script (genprior_nb.cli) run as a subprocess: help, one-line errors, train and resume."
import os, sys, json, subprocess
from pathlib import Path
import pytest
import torch
import fastcore.test as fct

from genprior_nb.core import safe_torch_load
from genprior_nb.data import shapes_dataset
from genprior_nb.vae import VAE, train_autoencoder
from genprior_nb.pretrained import list_pretrained, load_weights
from genprior_nb.cli import build_parser

EXE = Path(sys.executable).parent/'genprior'
pytestmark = pytest.mark.skipif(not EXE.is_file(), reason=f'console script {EXE} not installed')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}

def start(*args, cwd=None):
    return subprocess.Popen([str(EXE), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd)

def finish(p, timeout=300):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err

def run(*args, **kw): return finish(start(*args, **kw))

def assert_one_line_error(rc, err, contains=''):
    fct.test_eq(rc, 2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('genprior: error:'), err
    assert 'Traceback' not in err and contains in lines[0], err

SUBCOMMANDS = ('demo', 'train', 'bench', 'list', 'score')

def test_parser_has_the_subcommands():
    sub = next(a for a in build_parser()._actions if a.dest == 'command')
    fct.test_eq(set(sub.choices), set(SUBCOMMANDS))

def test_help_list_and_errors():
    "Several cheap invocations, started together."
    procs = {'': start('--help'), **{f'help {s}': start(s, '--help') for s in SUBCOMMANDS},
             'list': start('--threads', '1', 'list'), 'threads0': start('--threads', '0', 'list'),
             'badchoice': start('train', '--model', 'gan', '--out', 'x')}
    res = {k: finish(p) for k, p in procs.items()}
    rc, out, err = res['']
    fct.test_eq(rc, 0); assert out.startswith('usage: genprior') and all(s in out for s in SUBCOMMANDS), out
    for s in SUBCOMMANDS:
        rc, out, err = res[f'help {s}']
        fct.test_eq(rc, 0); assert out.startswith(f'usage: genprior {s}'), (s, out, err)
    for opt in ('--model', '--data', '--steps', '--resume', '--subset', '--max-minutes', '--out'): assert opt in res['help train'][1]
    # list: one line per shipped model
    rc, out, err = res['list']
    fct.test_eq(rc, 0); fct.test_eq([l.split()[0] for l in out.splitlines()], list_pretrained())
    # a user error: exactly one stderr line, exit status 2, no traceback
    rc, out, err = res['threads0']
    assert_one_line_error(rc, err, '--threads must be >= 1, got 0'); fct.test_eq(out, '')
    # argparse errors also exit 2 and end with a 'genprior ... error:' line, no traceback
    rc, out, err = res['badchoice']
    fct.test_eq(rc, 2); assert 'Traceback' not in err, err
    assert err.strip().splitlines()[-1].startswith("genprior train: error: argument --model: invalid choice: 'gan'"), err

def test_train_interrupt_resume(tmp_path):
    out = tmp_path/'run'
    args = ['--threads', '1', 'train', '--model', 'vae', '--data', 'shapes', '--subset', 64, '--steps', 6, '--batch-size', 16,
            '--width', 8, '--seed', 2, '--ckpt-every', 2, '--out', out, '--no-progress', '--device', 'cpu']
    # 1. a run stopped by its time budget after the first step: checkpoint, weights and record are written
    rc, so, err = run(*args, '--max-minutes', 0)
    fct.test_eq(rc, 0); assert 'Traceback' not in err, err
    fct.test_eq(sorted(p.name for p in out.iterdir()), ['checkpoint.pt', 'model.pt', 'train.json'])
    rec = json.loads((out/'train.json').read_text())
    fct.test_eq(rec['steps_done'], 1); fct.test_eq(rec['data'], 'shapes')
    fct.test_eq(rec['config'], {'model': 'vae', 'latent_dim': 8, 'width': 8, 'kl_weight': 0.05})
    fct.test_eq(safe_torch_load(out/'checkpoint.pt')['step'], 1)
    # 2. the same command again, without --resume, refuses to overwrite
    before = (out/'checkpoint.pt').read_bytes()
    rc, so, err = run(*args)
    assert_one_line_error(rc, err, 'pass --resume')
    fct.test_eq((out/'checkpoint.pt').read_bytes(), before)
    # 3. --resume continues to the end
    rc, so, err = run(*args, '--resume')
    fct.test_eq(rc, 0); assert 'Traceback' not in err, err
    assert 'trained vae for 6 steps' in so, so
    rec = json.loads((out/'train.json').read_text())
    fct.test_eq(rec['steps_done'], 6); fct.test_eq(rec['history']['step'][0], 0)
    fct.test_eq(sorted(p.name for p in out.iterdir()), ['checkpoint.pt', 'model.pt', 'train.json'])
    # the shipped weights equal an uninterrupted library run with the same settings (shapes image i does not depend on n)
    torch.manual_seed(2); ref = VAE(8, 8, 0.05)
    train_autoencoder(ref, shapes_dataset(64, seed=0), steps=6, batch_size=16, lr=2e-3, seed=2, progress=False)
    m = load_weights(VAE(8, 8), out/'model.pt')
    sd, sr = m.state_dict(), ref.state_dict()
    assert all(torch.equal(sd[k], sr[k]) for k in sr), "CLI interrupt + resume differs from an uninterrupted run"
