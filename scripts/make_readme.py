"""Render nbs/index.ipynb to README.md (Quarto, which nbdev_readme needs, is not installable here).

    python scripts/make_readme.py          # write README.md
    python scripts/make_readme.py --check  # exit 1 if README.md is out of date
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _fix_paths(md:str) -> str:
    "Paths in the notebook are relative to nbs/; the README lives one folder up."
    md = re.sub(r'\]\((images/[^)]+)\)', r'](nbs/\1)', md)
    return re.sub(r'\]\(([\w.-]+\.ipynb)\)', r'](nbs/\1)', md)

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    "README.md text from the index notebook: markdown as is, code as fenced blocks with their text outputs."
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source']).rstrip()
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code':
            if re.match(r'#\s*\|\s*hide', src): continue
            outs = cell.get('outputs', [])
            if re.match(r'#\s*\|\s*echo:\s*false', src):   # a cell that writes prose from stored results: its Markdown output only
                parts += [''.join(o['data']['text/markdown']).rstrip() for o in outs
                          if o.get('output_type') in ('display_data', 'execute_result') and 'text/markdown' in o.get('data', {})]
                continue
            parts.append(f'```python\n{src}\n```')
            text = ''.join(''.join(o.get('text', '')) for o in outs if o.get('output_type') == 'stream')
            if text.strip(): parts.append(f'```\n{text.rstrip()}\n```')
    parts = [_fix_paths(p) for p in parts]
    return '<!-- generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv:
        ok = (ROOT/'README.md').read_text() == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python scripts/make_readme.py')
        sys.exit(0 if ok else 1)
    (ROOT/'README.md').write_text(text)
    print('wrote README.md')
