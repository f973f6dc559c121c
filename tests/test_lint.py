"Static checks on the package, the tests and the scripts (ruff, installed with the dev extras)."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_no_unused_imports_or_names():
    "No unused import (F401) or unused local (F841) anywhere; a stale import hides a real dependency."
    r = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--select', 'F401,F841', '--output-format', 'concise',
                        '--no-cache', 'genprior_nb', 'tests', 'scripts'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
