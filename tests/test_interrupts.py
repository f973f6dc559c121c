"""Interrupted work: the `genprior` CLI is killed (SIGKILL) at seeded random moments during a tiny training run and a tiny
benchmark run, then resumed until it finishes. Nothing completed is lost or recomputed, the results equal those of an
uninterrupted run with the same seed, and no half-written file is ever left where a good one should be. Ctrl-C (SIGINT)
saves a checkpoint and exits with status 130 and one line on stderr.

The three scenarios mostly wait for subprocesses, so they run side by side in threads, started together by a module
fixture (only those whose test is selected); each test waits for its own scenario and re-raises what it raised.
"""
import os, sys, csv, json, time, random, signal, threading, subprocess
from pathlib import Path
import pytest
import torch

from genprior_nb.core import safe_torch_load

EXE = Path(sys.executable).parent/'genprior'
pytestmark = pytest.mark.skipif(not EXE.is_file(), reason=f'console script {EXE} not installed')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
KILLS = 3          # SIGKILLs per run
TIMEOUT = 240      # seconds any one process may take

def _default_sigint():
    "In the child: SIGINT as a terminal gives it. A shell starts background jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt."
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def start(*args):
    return subprocess.Popen([str(EXE), '--threads', '1', *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, preexec_fn=_default_sigint)

def finish(p):
    out, err = p.communicate(timeout=TIMEOUT)
    return p.returncode, out, err

def tmp_files(folder):
    "Temporary files (of atomic writes) anywhere under `folder`."
    return [str(Path(d)/f) for d, _, fs in os.walk(folder) for f in fs if f.endswith('.tmp')]

def wait_until(p, cond, poll=0.002):
    "Poll until `cond()` holds or the process ends; True when the condition was met while the process ran."
    t0 = time.time()
    while p.poll() is None:
        if cond(): return True
        if time.time() - t0 > TIMEOUT: p.kill(); raise TimeoutError('the process made no progress')
        time.sleep(poll)
    return False

def kill_at_random(p, cond, rng, max_delay):
    "Once `cond()` holds, wait a random time in [0, max_delay] s and SIGKILL; True when the process was killed."
    if wait_until(p, cond): time.sleep(rng.uniform(0, max_delay))
    if p.poll() is None: p.send_signal(signal.SIGKILL)
    rc, out, err = finish(p)
    if rc == -signal.SIGKILL: return True
    assert rc == 0 and 'Traceback' not in err, (rc, err)
    return False

# ---------------------------------------------------------------- scenarios run side by side

def _background(fn, folder):
    box = {}
    def run():
        try: fn(folder)
        except BaseException as e: box['error'] = e
    t = threading.Thread(target=run, daemon=True, name=fn.__name__); t.start()
    return t, box

@pytest.fixture(scope='module')
def scenarios(request, tmp_path_factory):
    selected = {i.name for i in request.session.items}
    jobs = {}
    for test, fn in SCENARIOS.items():
        if test in selected:
            folder = tmp_path_factory.mktemp(fn.__name__); jobs[test] = _background(fn, folder)
    yield jobs
    for t, _ in jobs.values(): t.join(3*TIMEOUT)

def _outcome(scenarios, test):
    t, box = scenarios[test]
    t.join(3*TIMEOUT); assert not t.is_alive(), f'{test} did not finish'
    if 'error' in box: raise box['error']

def test_train_killed_and_resumed_equals_uninterrupted(scenarios): _outcome(scenarios, 'test_train_killed_and_resumed_equals_uninterrupted')
def test_ctrl_c_saves_a_checkpoint_and_exits_130(scenarios): _outcome(scenarios, 'test_ctrl_c_saves_a_checkpoint_and_exits_130')
def test_bench_killed_and_resumed_equals_uninterrupted(scenarios): _outcome(scenarios, 'test_bench_killed_and_resumed_equals_uninterrupted')

# ---------------------------------------------------------------- training

TRAIN = ['train', '--model', 'vae', '--data', 'shapes', '--subset', 64, '--width', 8, '--batch-size', 16, '--steps', 40,
         '--ckpt-every', 2, '--seed', 3, '--no-progress', '--device', 'cpu']

def mtime(p):
    try: return p.stat().st_mtime_ns
    except FileNotFoundError: return None

def check_train_files(out):
    "Every file of the run folder that exists is complete: checkpoints and weights load, the record parses."
    for name in ('checkpoint.pt', 'model.pt'):
        if (out/name).exists(): safe_torch_load(out/name)   # raises UnsafeCheckpointError if truncated
    if (out/'train.json').exists(): json.loads((out/'train.json').read_text())

def train_scenario(tmp_path):
    ref_out, out = tmp_path/'ref', tmp_path/'run'
    ref = start(*TRAIN, '--out', ref_out)          # the uninterrupted run, side by side with the first killed one
    rng, kills, steps_seen, mid_write = random.Random(20240611), 0, [], 0
    p = start(*TRAIN, '--out', out)
    while kills < KILLS:
        before = mtime(out/'checkpoint.pt')
        # kill at a random moment after this process has written a checkpoint of its own (so it is mid-training)
        killed = kill_at_random(p, lambda: mtime(out/'checkpoint.pt') not in (None, before), rng, 0.1)
        check_train_files(out)
        if not killed: break
        kills += 1; steps_seen.append(safe_torch_load(out/'checkpoint.pt')['step']); mid_write += bool(tmp_files(out))
        p = start(*TRAIN, '--out', out, '--resume')
    else:
        rc, so, err = finish(p)
        assert rc == 0 and 'Traceback' not in err, err
        assert 'trained vae for 40 steps' in so, so
    print(f"train: {kills} SIGKILLs at checkpoint steps {steps_seen}, {mid_write} of them while a file was being written")
    assert kills >= KILLS, f"the run finished after {kills} kills; kill earlier"
    assert steps_seen == sorted(steps_seen) and 0 < steps_seen[0] and steps_seen[-1] <= 40, steps_seen   # progress was kept
    rc, so, err = finish(ref)
    assert rc == 0, err
    # the final weights, optimiser state and history equal the uninterrupted run's, bit for bit
    a, b = safe_torch_load(out/'model.pt'), safe_torch_load(ref_out/'model.pt')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert (out/'model.pt').read_bytes() == (ref_out/'model.pt').read_bytes()
    ca, cb = safe_torch_load(out/'checkpoint.pt'), safe_torch_load(ref_out/'checkpoint.pt')
    assert ca['step'] == cb['step'] == 40 and torch.equal(ca['torch_rng'], cb['torch_rng'])
    for k in ca['optims']['opt']['state']:
        for n, t in ca['optims']['opt']['state'][k].items(): assert torch.equal(t, cb['optims']['opt']['state'][k][n])
    ra, rb = json.loads((out/'train.json').read_text()), json.loads((ref_out/'train.json').read_text())
    assert ra['history'] == rb['history'] and ra['steps_done'] == rb['steps_done'] == 40 and ra['config'] == rb['config']
    # no half-written file anywhere: only the three results, no temporary files
    assert sorted(os.listdir(out)) == ['checkpoint.pt', 'model.pt', 'train.json'], os.listdir(out)
    assert tmp_files(tmp_path) == []

def ctrl_c_scenario(tmp_path):
    out = tmp_path/'run'
    args = [*TRAIN, '--out', out]; args[args.index('--steps') + 1] = 100_000; args[args.index('--ckpt-every') + 1] = 7
    p = start(*args)
    assert wait_until(p, lambda: (out/'checkpoint.pt').exists()), finish(p)
    time.sleep(random.Random(7).uniform(0.02, 0.2))
    t_int = time.time(); p.send_signal(signal.SIGINT)
    rc, so, err = finish(p)
    assert rc == 130, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert lines[0] == f"genprior: interrupted; checkpoint {out/'checkpoint.pt'} saved; re-run with --resume to continue", lines
    ck = safe_torch_load(out/'checkpoint.pt')
    assert 7 <= ck['step'] < 100_000
    assert (out/'checkpoint.pt').stat().st_mtime >= t_int - 0.05, "no checkpoint was written after the interrupt"
    assert tmp_files(out) == [] and not (out/'model.pt').exists()
    # the checkpoint resumes: one more step (the time budget of 0 minutes stops after it)
    rc, so, err = finish(start(*args, '--resume', '--max-minutes', 0))
    assert rc == 0, err
    assert f"trained vae for {ck['step'] + 1} steps" in so, so
    assert safe_torch_load(out/'checkpoint.pt')['step'] == ck['step'] + 1

# ---------------------------------------------------------------- the benchmark

BENCH = ['bench', 'quality', '--quick', '--device', 'cpu']

def cell_files(out): return sorted((out/'cells').glob('*.csv')) if (out/'cells').is_dir() else []

def holds_a_lock(out, pid):
    "Whether process `pid` holds the lock of a cell (it is computing that cell)."
    for f in (out/'cells').glob('*.lock') if (out/'cells').is_dir() else []:
        try:
            if f.read_text() == str(pid): return True
        except OSError: pass
    return False

def read_rows(path, drop=('seconds',)):
    "A CSV's rows without its timing columns."
    with open(path, newline='') as f: return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]

def bench_scenario(tmp_path):
    from genprior_nb.bench import quality_grid, CELL_COLUMNS
    ref_out, out = tmp_path/'ref', tmp_path/'run'
    ref = start(*BENCH, '--out', ref_out)
    rng, kills, done = random.Random(31337), 0, {}   # done: cell file -> mtime when first seen complete
    p = start(*BENCH, '--out', out)
    while True:
        n0 = len(cell_files(out))
        # the first run is killed after it finished a cell, the others once they started one (so, mostly mid-cell)
        cond = (lambda: len(cell_files(out)) > n0) if kills == 0 else (lambda: holds_a_lock(out, p.pid))
        killed = kill_at_random(p, cond, rng, 0.1) if kills < KILLS else None
        if killed is None:
            rc, so, err = finish(p)
            assert rc == 0 and 'Traceback' not in err, err
            break
        if killed: print(f"bench: SIGKILL {kills + 1} with {len(cell_files(out))} cells done, {len(tmp_files(out))} temporary files left")
        for f in cell_files(out):   # every cell file that exists is complete ...
            rows = read_rows(f, ())
            assert len(rows) == 2 and list(rows[0]) == list(CELL_COLUMNS), f
            done.setdefault(f.name, f.stat().st_mtime_ns)
        if not killed: break
        kills += 1
        p = start(*BENCH, '--out', out)
    assert kills >= KILLS, f"the benchmark finished after {kills} kills; kill earlier"
    assert 0 < len(done), done
    # ... and is never recomputed by a later run
    assert {f: (out/'cells'/f).stat().st_mtime_ns for f in done} == done, "finished cells were recomputed"
    rc, so, err = finish(ref)
    assert rc == 0, err
    # the results equal the uninterrupted run's (all but the timing columns)
    names = sorted(f.name for f in cell_files(out))
    assert names == sorted(f.name for f in cell_files(ref_out)) and len(names) == len(quality_grid(quick=True, dataset='shapes'))
    for n in names: assert read_rows(out/'cells'/n) == read_rows(ref_out/'cells'/n), n
    assert read_rows(out/'quality.csv') == read_rows(ref_out/'quality.csv')
    # no half-written or stale files: no temporary files, no cell locks
    assert tmp_files(out) == [] and list((out/'cells').glob('*.lock')) == []

SCENARIOS = {'test_train_killed_and_resumed_equals_uninterrupted': train_scenario,
             'test_ctrl_c_saves_a_checkpoint_and_exits_130': ctrl_c_scenario,
             'test_bench_killed_and_resumed_equals_uninterrupted': bench_scenario}
