"""Score every shipped generator with `evaluate_generator` (default sizes) into nbs/benchmarks/scorecard.json.

    python scripts/run_scorecard.py                 # all shipped generators not yet in the file
    python scripts/run_scorecard.py --redo vae-shapes-8

Resumable: generators already in the file are skipped unless named after --redo; the file is rewritten atomically
after each generator.
"""
import sys, json, os, time, platform
from pathlib import Path
import torch
from genprior_nb.core import set_cpu_threads
from genprior_nb.pretrained import list_pretrained, load_pretrained, model_card
from genprior_nb.scorecard import evaluate_generator, scorecard

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'nbs'/'benchmarks'/'scorecard.json'

if __name__ == '__main__':
    set_cpu_threads(int(os.environ.get('GENPRIOR_THREADS', 2)))
    redo = set(sys.argv[sys.argv.index('--redo') + 1:]) if '--redo' in sys.argv else set()
    evals = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in list_pretrained():
        if name in evals and name not in redo: continue
        t0 = time.time()
        ev = evaluate_generator(load_pretrained(name), model_card(name)['data'])
        ev['machine'] = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
        evals[name] = ev
        scorecard(evals).to_json(OUT)
        print(f"{name}: {time.time() - t0:.0f} s {ev['seconds']}", flush=True)
    print(scorecard(evals))
