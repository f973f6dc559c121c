"The README is generated from nbs/index.ipynb and opens with the two commands."
import re, subprocess, sys
from pathlib import Path
import fastcore.test as fct

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'scripts'))
import make_readme

def test_readme_in_sync_with_index():
    fct.test_eq((ROOT/'README.md').read_text(), make_readme.render())

def test_readme_opens_with_the_two_commands_then_the_picture():
    text = (ROOT/'README.md').read_text()
    first_block = re.search(r'```bash\n(.*?)```', text, re.S).group(1)
    commands = [l.split('#')[0].strip() for l in first_block.splitlines() if l.strip()]
    fct.test_eq(commands, ['bash run.sh demo', 'bash run.sh test'])
    assert text.index('```bash') < text.index('![') < text.index('## What it does')
    img = re.search(r'!\[[^\]]*\]\(([^)]+)\)', text).group(1)
    assert (ROOT/img).is_file() and (ROOT/img).stat().st_size < 200_000, img

def test_run_sh_knows_both_commands():
    out = subprocess.run(['bash', str(ROOT/'run.sh'), 'nonsense'], capture_output=True, text=True)
    fct.test_eq(out.returncode, 2)
    assert 'demo' in out.stdout and 'test' in out.stdout
