"""Build the documentation website `_docs/` from the notebooks, without Quarto.

Each notebook goes through nbdev's own docs processors (`nbdev.processors.FilterDefaults`, what
`nbdev_proc_nbs` / `nbdev_docs` run): frontmatter from the H1 and `>` summary, `#| hide` / `#| export`
cells removed, `show_doc` cells added and executed, backticked names linked. The processed notebook is then
rendered with nbconvert's `lab` cell markup (no prompts) into a static page with a sidebar listing every page.
The Quarto-only parts are done here: `#| echo/output/include/code-fold` directives, `[x](url){attrs}`,
`::: {.callout-note}` fenced divs, `$math$` (MathML via latex2mathml when installed, else TeX shown as
code), links to the site (`https://<doc_host><doc_baseurl>/x.html`) and to notebooks (`07_vae.ipynb`) made
relative, local images embedded as data URIs. A link or image that would not resolve is never written:
it is turned into text and reported (exit code 1 with --strict).

    python scripts/build_docs.py [--nbs nbs] [--dest _docs] [--strict] [--quiet]
"""
from __future__ import annotations
import argparse, base64, contextlib, html, mimetypes, os, posixpath, re, sys, time, warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ['build_docs', 'doc_name', 'DocsBuild', 'DocsError', 'main']

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------- names
def doc_name(nb: Path, nbs: Path) -> str:
    "Site path of notebook `nb` (nbdev's rule: number prefix dropped, lower case): 02_operators.ipynb -> operators.html"
    rel = Path(nb).resolve().relative_to(Path(nbs).resolve())
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html').as_posix()

def _list_nbs(nbs: Path) -> list[Path]:
    "Notebooks nbdev documents: no file or folder starting with `_` or `.`; index first, then by path"
    out = []
    for p in sorted(nbs.rglob('*.ipynb')):
        parts = p.relative_to(nbs).parts
        if any(s.startswith(('_', '.')) for s in parts): continue
        out.append(p)
    return sorted(out, key=lambda p: (p.relative_to(nbs).as_posix() != 'index.ipynb', p.relative_to(nbs).as_posix()))

def _anchor_id(text: str) -> str:
    "Heading id as Quarto/pandoc make it, which is also the anchor nbdev's doc links use (`Foo.bar` -> `foo.bar`)"
    t = re.sub(r'<[^>]+>', '', html.unescape(text)).strip().lower()
    t = re.sub(r'\s+', '-', t)
    t = re.sub(r'[^\w\-.]', '', t)
    return t or 'section'

# --------------------------------------------------------------------------------------------- processing
@contextlib.contextmanager
def _env(**kw):
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update(kw)
    try: yield
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v

def _docs_filter():
    "nbdev's `FilterDefaults`, with `exec_show_docs` made to document the saved notebook (see `exec_saved`)"
    import ast
    from nbdev import processors as P

    class exec_saved(P.exec_show_docs):
        """`exec_show_docs` runs the cells `show_doc` needs: exports, cells with imports, `show_doc` cells, and writes
        their fresh outputs into the page. Here a cell that mixes imports with other code (nbdev warns about these)
        has only its top-level imports run, and every cell but a `show_doc` one keeps its saved outputs, so the
        pages show what the notebook shows, are deterministic, and the build does not repeat the notebook's work."""
        def __call__(self, cell):
            trees = cell.parsed_() if cell.cell_type == 'code' else None
            if not trees: return super().__call__(cell)
            if P._show_docs(trees) or cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}:
                return super().__call__(cell)
            saved, src = cell.get('outputs', []), cell.source
            imps = [t for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]
            if imps and len(imps) < len(trees):
                cell.source = '\n'.join(ast.unparse(t) for t in imps)
                self.nb.mixed_cells_ = getattr(self.nb, 'mixed_cells_', 0) + 1
            try: super().__call__(cell)
            finally: cell.source, cell.outputs = src, saved
    exec_saved.__name__ = 'exec_show_docs'   # settings.ini's skip_procs names it so

    class add_show_docs_full_names(P.add_show_docs):
        """nbdev's `add_show_docs` adds a `show_doc` after every exported definition not yet documented, but compares
        the bare name (`static`) with the names already shown (`InterpolationWidget.static`): a `@patch`ed method with
        its own `show_doc` cell is documented twice, under one anchor. Here the full name counts too."""
        def begin(self):
            from execnb.nbio import mk_cell, NbCell
            from fastcore.foundation import L
            from fastcore.xtras import concat
            from nbdev.showdoc import showdoc_nm
            nb = self.nb
            exports = L(c for c in nb.cells if P._want_doc(c))
            shown = {P._get_nm(t) for t in P._show_docs(L(nb.cells).map(NbCell.parsed_).concat())}
            for cell in reversed(exports):
                if P.cell_lang(cell) != 'python': raise ValueError(f"{cell.metadata.language} can't export:\n{cell.source}")
                defs = concat(cell.parsed_() or [])
                for nm in [showdoc_nm(o) for o in defs if isinstance(o, P._def_types) and o.name not in shown
                           and showdoc_nm(o) not in shown and (o.name[0] != '_' or o.name[:2] == '__')]:
                    new = mk_cell(f'show_doc({nm})'); new.has_sd = True
                    nb.cells.insert(cell.idx_ + 1, new)
            nb.has_docs_ = shown or exports
    add_show_docs_full_names.__name__ = 'add_show_docs'

    class DocsFilter(P.FilterDefaults):
        def base_procs(self):
            fix = {P.exec_show_docs: exec_saved, P.add_show_docs: add_show_docs_full_names}
            return [fix.get(p, p) for p in super().base_procs()]
    return DocsFilter()

def _process(nb_path: str, root: str) -> str:
    "Run nbdev's docs processors on one notebook, as `nbdev.serve_drv` does; JSON of {nb, fm, msgs}"
    import json, yaml
    from execnb.nbio import read_nb, nb2dict
    nb = read_nb(nb_path)
    with contextlib.chdir(root), warnings.catch_warnings(record=True) as caught, \
         _env(IN_TEST='1', MPLBACKEND='Agg'), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter('always')
        _docs_filter()(nb)
    msgs = list(dict.fromkeys(_short(str(w.message)) for w in caught))
    fm = {}
    cells = [c for c in nb.cells if c.get('source') is not None]
    if cells and cells[0].cell_type == 'raw' and cells[0].source.startswith('---'):
        fm = yaml.safe_load(cells[0].source.strip().strip('-')) or {}
        cells = cells[1:]
    nb.cells = [c for c in cells if not (c.cell_type == 'markdown' and c.source.strip().startswith('<!-- WARNING: THIS FILE'))]
    d = nb2dict(nb)
    for c in d['cells']:
        for k in [k for k in c if k.endswith('_')]: c.pop(k)   # execnb's parsed directives etc.
    return json.dumps({'nb': d, 'fm': {k: str(v) for k, v in fm.items()}, 'msgs': msgs}, sort_keys=True)

class DocsError(RuntimeError): "A notebook could not be processed"

def _why(e: BaseException) -> str:
    "The message of `e` and of its causes, one line each"
    out = []
    while e is not None and len(out) < 4:
        out.append(f'{type(e).__name__}: {str(e).strip()}'); e = e.__cause__
    return '\n    '.join(out)

def _short(msg: str) -> str:
    "One line for a warning nbdev raised while processing"
    lines = [l for l in msg.strip().splitlines() if l.strip() and l.strip() != '---']
    if lines and lines[0].startswith('Found cells containing imports and other code'):
        return f'a cell with imports and other code runs at docs-build time (nbdev FAQ): {lines[1][:90] if len(lines) > 1 else ""}'
    return lines[0][:200] if lines else ''

def _importable(fn):
    "`fn` from this file imported as module `build_docs`, so that spawned workers can unpickle it"
    if __name__ == 'build_docs': return fn
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path: sys.path.insert(0, here)
    import importlib
    return getattr(importlib.import_module('build_docs'), fn.__name__)

def _cache_key(nb: Path, root: Path, lib: Path) -> str:
    "What nbdev's processed notebook depends on: the notebook, the library (show_doc, doc links), settings, this builder, versions"
    import hashlib, importlib.metadata as md
    h = hashlib.sha256()
    for f in [nb, root / 'settings.ini', Path(__file__), *sorted(lib.rglob('*.py'))]:
        if f.is_file(): h.update(f.name.encode()); h.update(f.read_bytes())
    for pkg in ('nbdev', 'execnb', 'fastcore'):
        with contextlib.suppress(Exception): h.update(f'{pkg}={md.version(pkg)}'.encode())
    return h.hexdigest()[:20]

def _process_all(notebooks: list, root: Path, lib: Path, cache: Path | None, n_workers: int, log) -> dict:
    "Processed notebooks {path: {nb, fm, msgs}}, from the cache (`_proc/docs-cache`) when nothing they depend on changed"
    import json
    out, todo, failed = {}, [], []
    for p in notebooks:
        f = cache / f"{p.stem}.{_cache_key(p, root, lib)}.json" if cache else None
        if f and f.is_file(): out[p] = json.loads(f.read_text(encoding='utf-8'))
        else: todo.append((p, f))
    if todo: log(f'  nbdev processing {len(todo)} notebook(s) ({len(notebooks) - len(todo)} cached), {n_workers} worker(s)')
    def done(p, f, js, dt):
        out[p] = json.loads(js)
        log(f'  {p.name} processed ({dt:.1f} s)')
        if f:
            f.parent.mkdir(parents=True, exist_ok=True)
            for old in f.parent.glob(f'{p.stem}.*.json'): old.unlink()
            tmp = f.with_suffix(f'.{os.getpid()}.tmp'); tmp.write_text(js, encoding='utf-8'); tmp.replace(f)
    if n_workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        t = time.perf_counter()
        with ProcessPoolExecutor(min(n_workers, len(todo)), mp_context=mp.get_context('spawn')) as ex:
            futs = [(p, f, ex.submit(_importable(_process), str(p), str(root))) for p, f in todo]
            for p, f, fut in futs:
                try: done(p, f, fut.result(), time.perf_counter() - t)
                except Exception as e: failed.append((p, e))
    else:
        for p, f in todo:
            t = time.perf_counter()
            try: done(p, f, _process(str(p), str(root)), time.perf_counter() - t)
            except Exception as e: failed.append((p, e))
    if failed:
        raise DocsError('nbdev could not process ' + ', '.join(p.name for p, _ in failed) + ':\n' +
                        '\n'.join(f'--- {p.name}: {_why(e)}' for p, e in failed) +
                        "\n(nbdev's docs step runs every cell that has an import, an export or show_doc: "
                        "keep imports in cells of their own)")
    return out

_re_dir = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')

def _directives(src: str):
    "Split the leading `#| key: value` lines off a code cell: (dict, remaining source)"
    lines, d = src.splitlines(), {}
    i = 0
    while i < len(lines) and _re_dir.match(lines[i]):
        k, v = _re_dir.match(lines[i]).groups()
        d[k.lower()] = v.strip().strip('"\'').lower() if k.lower() != 'code-summary' else v.strip().strip('"\'')
        i += 1
    return d, '\n'.join(lines[i:]).strip('\n')

def _false(v): return str(v).strip().lower() in ('false', 'no', '0')

TEST_FAIL = 'test_fail'

def _fail_example(call, src: str, indent: str = '') -> str | None:
    "`fct.test_fail(lambda: f(x), contains='msg')` as the line a reader wants, `f(x)  # raises: msg`; None if not that form"
    import ast
    if not call.args: return None
    f = call.args[0]
    def code(node):   # as written when it fits on one line
        seg = ast.get_source_segment(src, node)
        return seg if seg and '\n' not in seg else ast.unparse(node)
    expr = code(f.body) if isinstance(f, ast.Lambda) and not f.args.args else f'{code(f)}()'
    kw = {k.arg: k.value for k in call.keywords}
    msg = kw.get('contains', call.args[2] if len(call.args) > 2 else None)
    if isinstance(msg, ast.Constant) and isinstance(msg.value, str): text = msg.value
    elif isinstance(msg, ast.JoinedStr):   # an f-string: its fixed parts, an ellipsis for each value
        text = ''.join(v.value if isinstance(v, ast.Constant) else '\u2026' for v in msg.values)
    elif msg is None: text = ''
    else: return None
    text = ' '.join(text.split())
    return f"{indent}{expr}  # raises{': ' + text if text else ' an error'}"

def _readable_test_fail(src: str) -> str:
    """The code of a cell as the page shows it. fastcore's `test_fail(lambda: f(x), contains='msg')` is written for the
    test runner; the page shows the example it encodes, `f(x)  # raises: msg`, one line per check (also inside an
    `if` that holds nothing else). The notebook and its tests keep the check; a statement that shares a line with
    other code, or a form not recognised, is shown as written."""
    import ast
    if TEST_FAIL not in src: return src
    try: tree = ast.parse(src)
    except SyntaxError: return src
    def fail_call(st):
        f = st.value.func if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) else None
        return st.value if (getattr(f, 'attr', None) or getattr(f, 'id', None)) == TEST_FAIL else None
    lines, used = src.splitlines(), {}
    for st in tree.body:
        for i in range(st.lineno - 1, st.end_lineno): used[i] = used.get(i, 0) + 1
    repl = {}   # first line -> (last line, new text)
    for st in tree.body:
        if any(used[i] > 1 for i in range(st.lineno - 1, st.end_lineno)): continue
        ind = re.match(r'\s*', lines[st.lineno - 1]).group(0)
        if fail_call(st): new = _fail_example(fail_call(st), src, ind)
        elif isinstance(st, ast.If) and not st.orelse and all(map(fail_call, st.body)):
            body = [_fail_example(fail_call(b), src, ind + '    ') for b in st.body]
            new = None if None in body else '\n'.join([f'{ind}if {ast.unparse(st.test)}:'] + body)
        else: continue
        if new is not None: repl[st.lineno - 1] = (st.end_lineno - 1, new)
    out, i = [], 0
    while i < len(lines):
        if i in repl: out.append(repl[i][1]); i = repl[i][0] + 1
        else: out.append(lines[i]); i += 1
    return '\n'.join(out)

def _prepare(nb):
    "Apply the Quarto cell options nbdev's processors leave in the sources"
    import nbformat
    from nbformat.v4.rwbase import rejoin_lines
    nb = rejoin_lines(nbformat.from_dict(nb))   # sources and outputs are lists of lines after nbdev
    keep = []
    for i, c in enumerate(nb.cells):
        c['id'] = f'c{i}'  # processors add cells without ids; number them so the page is deterministic
        if c.cell_type == 'raw': continue  # raw cells are for Quarto only
        if c.cell_type != 'code':
            keep.append(c); continue
        d, src = _directives(c.source)
        if _false(d.get('include', 'true')): continue
        c.source = src = _readable_test_fail(src)
        meta = {}
        if _false(d.get('echo', 'true')) or not src.strip(): meta['hide_input'] = True
        if _false(d.get('output', 'true')): c.outputs = []
        if d.get('code-fold') in ('true', 'show'):
            meta['fold'] = 'open' if d['code-fold'] == 'show' else ''
            meta['summary'] = d.get('code-summary', 'Code')
        c.metadata['docs'] = meta
        if meta.get('hide_input') and not c.get('outputs'): continue
        keep.append(c)
    nb.cells = keep
    nb.metadata.pop('widgets', None)   # widget state (nbdev adds an empty one); pages load no widget JS
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor
    return CoalesceStreamsPreprocessor().preprocess(nb, {})[0]   # one box per stream, not one per print

# --------------------------------------------------------------------------------------------- markdown
_re_attr_link = re.compile(r'\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}')
_re_fence_open = re.compile(r'^:::+\s*\{([^}]*)\}\s*$|^:::+\s*([\w-]+)\s*$')
_re_fence_close = re.compile(r'^:::+\s*$')
_re_code_link = re.compile(r'\[`([^`\n]+)`\]\([^)\s]+\)')

_PIPE = '\ue000'   # stands for an escaped pipe inside a code span of a table cell until the HTML is written
_re_table_delim = re.compile(r'^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$')

def _table_pipes(src: str) -> str:
    """In a GFM table a backslash-escaped pipe is a pipe in the cell, also inside a code span (GitHub and JupyterLab
    show `||x||` for a cell holding a code span with escaped pipes); mistune would print the backslashes there.
    Math keeps its escaped pipes (TeX's double bar)."""
    lines, in_table, in_code = src.splitlines(), False, False
    for i, line in enumerate(lines):
        if line.lstrip().startswith('```'): in_code = not in_code
        if in_code or not line.strip(): in_table = False; continue
        if not in_table and i + 1 < len(lines) and '|' in line and '-' in lines[i + 1] and _re_table_delim.match(lines[i + 1]):
            in_table = True
        if in_table and '\\|' in line:
            lines[i] = ''.join(seg.replace('\\|', _PIPE) if seg.startswith('`') else seg
                               for seg in re.split(r'(`+[^`]*`+)', line))
    return '\n'.join(lines)

def _quarto_md(src: str) -> str:
    "Rewrite the Quarto-only markdown nbdev emits into plain markdown/HTML"
    src = _table_pipes(src)
    def _link(m):
        text, url, attrs = m.groups()
        tgt = ' target="_blank" rel="noopener"' if 'target="_blank"' in attrs else ''
        cls = ' class="source-link"' if 'float:right' in attrs else ''
        return f'<a href="{html.escape(url)}"{tgt}{cls}>{text}</a>'
    src = _re_attr_link.sub(_link, src)
    out, in_code = [], False
    for line in src.splitlines():
        if line.lstrip().startswith('```'): in_code = not in_code
        elif in_code: line = _re_code_link.sub(r'\1', line)  # nbdev links backticked names in show_doc signatures too
        if not in_code and re.match(r'#{1,6}\s', line):   # headings hold names: `Foo.__neg__` is not bold
            line = ''.join(seg if i % 2 else re.sub(r'(?<!\\)_', r'\\_', seg)   # not inside `code`
                           for i, seg in enumerate(re.split(r'(`[^`]*`)', line)))
        if not in_code and _re_fence_open.match(line):
            m = _re_fence_open.match(line)
            classes = [c.lstrip('.') for c in (m.group(1) or m.group(2) or '').split() if c.startswith('.') or m.group(2)]
            classes = [c for c in classes if re.fullmatch(r'[\w-]+', c)]
            out += [f'<div class="{" ".join(classes)}">', '']
        elif not in_code and _re_fence_close.match(line): out += ['', '</div>', '']
        else: out.append(line)
    return '\n'.join(out)

def _mathml(tex: str, display: bool) -> str:
    try:
        from latex2mathml.converter import convert
        return convert(tex.strip(), display='block' if display else 'inline')
    except Exception:
        e = html.escape(tex.strip(), quote=False)
        return f'<pre class="math">{e}</pre>' if display else f'<code class="math">{e}</code>'

_HID = '\ue001'    # brackets a heading's number until its id is settled
RESERVED_IDS = ('top', 'site-nav', 'site-search', 'search-input', 'search-results', 'search-status')   # the page's own

def _heading_ids(body: str, headings: list) -> str:
    """Give every heading of a page its id. `headings`: (base id, API heading text or '') in page order. API headings
    (show_doc output) come first, so that they get the plain name nbdev's doc links use; then prose headings; a name
    already taken gets `-1`, `-2`, ... (as pandoc does), e.g. class `Smoothness` after function `smoothness`. Two API
    headings of the same text are one object documented twice, an error in the notebook: they are left with one id
    (tests/test_docs.py reports duplicate ids) rather than renamed."""
    taken, ids, api_text = set(RESERVED_IDS), [None] * len(headings), {}
    for i in sorted(range(len(headings)), key=lambda i: not headings[i][1]):
        base, text = headings[i]
        if text and api_text.get(base) == text: ids[i] = base; continue
        hid, n = base, 0
        while hid in taken: n += 1; hid = f'{base}-{n}'
        ids[i] = hid; taken.add(hid)
        if text and hid == base: api_text[base] = text
    return re.sub(f'{_HID}(\\d+){_HID}', lambda m: ids[int(m.group(1))], body)

def _exporter():
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class Renderer(IPythonRenderer):
        def __init__(self, *a, headings: list, api: bool, **kw):
            super().__init__(*a, **kw); self.headings, self.api = headings, api
        def heading(self, text, level, **attrs):
            # the id is settled once the whole page is rendered (see `_heading_ids`); a placeholder until then
            self.headings.append((_anchor_id(text), self.api and text)); tok = f'{_HID}{len(self.headings) - 1}{_HID}'
            return f'<h{level} id="{tok}">{text}<a class="anchor-link" href="#{tok}">&#182;</a></h{level}>\n'
        def block_math(self, body): return _mathml(body, True)
        def multiline_math(self, text): return _mathml(text.strip().strip('$'), True)
        def latex_environment(self, name, body): return _mathml(f'\\begin{{{name}}}{body}\\end{{{name}}}', True)
        def inline_math(self, body): return _mathml(body, False)

    class Exporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get('cell', {})
            path = context.get('resources', {}).get('metadata', {}).get('path', '')
            # images are embedded later (_fix_refs): nbconvert's embed_images breaks inline HTML such as <a ...>x</a>
            r = Renderer(escape=False, attachments=cell.get('attachments', {}), embed_images=False, path=path,
                         headings=self.headings, api=cell.get('cell_type') == 'code')   # a code cell's output: show_doc
            return MarkdownWithMath(renderer=r).render(_quarto_md(source)).replace(_PIPE, '|')

        def from_notebook_node(self, nb, resources=None, **kw):
            self.headings = []
            body, res = super().from_notebook_node(nb, resources, **kw)
            return _heading_ids(body, self.headings), res

    tpl = r"""{%- extends 'lab/base.html.j2' -%}
{% block input_group -%}
{%- set d = cell.metadata.get('docs', {}) -%}
{%- if not d.get('hide_input') -%}
{%- if 'fold' in d -%}<details class="code-fold" {{ d.fold }}><summary>{{ d.summary | escape_html }}</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{%- endif -%}
{%- endblock input_group %}
{%- block data_widget_view scoped -%}
<div class="jp-OutputArea-output widget-note">(an interactive widget: run the notebook to use it)</div>
{%- endblock data_widget_view -%}
"""
    return Exporter(template_name='lab', template_file='docs.html.j2', extra_loaders=[DictLoader({'docs.html.j2': tpl})],
                    exclude_input_prompt=True, exclude_output_prompt=True, anchor_link_text='\u00b6')

# --------------------------------------------------------------------------------------------- page
_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --bg:#fff; --side:#f6f8fa; --line:#d1d9e0; --accent:#0b5cad; --code:#f6f8fa; }
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body { font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 250px; overflow-y: auto; background: var(--side);
  border-right: 1px solid var(--line); padding: 1.2rem 1rem; font-size: 0.93rem; }
.sidebar .brand { display: block; font-weight: 700; font-size: 1.15rem; color: var(--fg); margin-bottom: .2rem; }
.sidebar .tagline { color: var(--muted); font-size: .8rem; line-height: 1.35; margin: 0 0 1rem; }
.sidebar ul { list-style: none; margin: 0; padding: 0; }
.sidebar li a { display: block; padding: .28rem .55rem; border-radius: 6px; color: var(--fg); }
.sidebar li a:hover { background: #e8ecf0; text-decoration: none; }
.sidebar li a.active { background: var(--accent); color: #fff; font-weight: 600; }
.content { margin-left: 250px; padding: 1.5rem 2.5rem 3rem; max-width: 1120px; }
.page-header h1.title { font-size: 2.1rem; margin: .2rem 0 .3rem; line-height: 1.2; }
.page-header .description { color: var(--muted); font-size: 1.1rem; margin: 0 0 1.2rem; }
.page-header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
h1, h2, h3, h4 { line-height: 1.25; margin: 1.6rem 0 .6rem; }
h2 { font-size: 1.55rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1.22rem; }
.anchor-link { visibility: hidden; margin-left: .35rem; font-size: .8em; color: var(--muted); }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link, h4:hover .anchor-link { visibility: visible; }
.jp-Collapser, .jp-InputPrompt, .jp-OutputPrompt { display: none; }
.jp-Cell { margin: 0 0 .9rem; }
pre, code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .86rem; }
:not(pre) > code { background: var(--code); padding: .1em .3em; border-radius: 4px; }
a code { color: var(--accent); }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 6px; padding: .65rem .8rem; overflow-x: auto; margin: .4rem 0; line-height: 1.45; }
.highlight pre { margin: 0; }
.jp-CodeCell .jp-InputArea pre { border-left: 3px solid var(--accent); }
.jp-OutputArea-output pre { background: #fff; border-color: #e4e8ec; white-space: pre-wrap; overflow-wrap: anywhere; }
.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] pre { background: #fff5f5; border-color: #f2c4c4; }
.jp-OutputArea-output img { max-width: 100%; height: auto; image-rendering: auto; }
.jp-OutputArea-output table, .jp-RenderedMarkdown table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
.jp-OutputArea-output th, .jp-OutputArea-output td, .jp-RenderedMarkdown th, .jp-RenderedMarkdown td { border: 1px solid var(--line); padding: .25rem .6rem; }
.jp-RenderedMarkdown img { max-width: 100%; }
.jp-RenderedMarkdown hr, .jp-OutputArea-output hr { border: 0; border-top: 1px solid var(--line); margin: 1.6rem 0 .4rem; }
.source-link { float: right; font-size: .8rem; }
details.code-fold > summary { cursor: pointer; color: var(--muted); font-size: .88rem; margin-bottom: .2rem; }
blockquote { margin: .5rem 0; padding: .1rem 1rem; border-left: 4px solid var(--line); color: var(--muted); }
.callout-note, .callout-tip, .callout-warning, .callout-important, .callout-caution { border-left: 4px solid var(--accent);
  background: #f3f8fd; padding: .3rem 1rem; margin: .8rem 0; border-radius: 4px; }
.callout-warning, .callout-caution, .callout-important { border-left-color: #d08700; background: #fff8e6; }
math { font-family: "STIX Two Math", "Latin Modern Math", "DejaVu Math TeX Gyre", "Cambria Math", math; }
math[display="block"] { margin: .6rem 0; overflow-x: auto; }
.math { white-space: pre-wrap; }
.missing-figure, .dead-link { color: #b42318; }
.widget-note { color: var(--muted); font-style: italic; font-size: .9rem; }
footer { color: var(--muted); font-size: .8rem; border-top: 1px solid var(--line); margin-top: 2.5rem; padding-top: .6rem; }
#site-search { margin: 0 0 1rem; }
#search-input { width: 100%; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
#search-status { color: var(--muted); font-size: .8rem; margin: .2rem 0 0; min-height: 0; }
#search-results { margin: .3rem 0 0; border-bottom: 1px solid var(--line); }
#search-results:empty { display: none; }
#search-results li a { padding: .25rem .45rem; line-height: 1.3; }
#search-results .search-page { display: block; color: var(--muted); font-size: .75rem; }
@media (max-width: 800px) { .sidebar { position: static; width: auto; border-right: 0; border-bottom: 1px solid var(--line); }
  .content { margin-left: 0; padding: 1rem; } }
"""

def _page(*, site: str, tagline: str, title: str, description: str, body: str, nav: list, here: str, css: str,
          source: str) -> str:
    def rel(p): return posixpath.relpath(p, posixpath.dirname(here) or '.')
    root = posixpath.relpath('.', posixpath.dirname(here) or '.')
    root = '' if root == '.' else root + '/'
    scripts = '\n'.join(f'<script src="{html.escape(rel(f))}" defer></script>' for f in SEARCH_FILES)
    active = ' class="active" aria-current="page"'
    items = '\n'.join(f'<li><a href="{html.escape(rel(p))}"{active if p == here else ""}>{html.escape(t)}</a></li>'
                      for p, t in nav)
    desc = f'<p class="description">{_inline_md(description)}</p>' if description else ''
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – {html.escape(site)}</title>
<meta name="description" content="{html.escape(description or tagline)}">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{html.escape(rel(css))}">
{scripts}
</head>
<body>
<nav class="sidebar" id="site-nav" aria-label="Pages">
<a class="brand" href="{html.escape(rel('index.html'))}">{html.escape(site)}</a>
<p class="tagline">{html.escape(tagline)}</p>
<div id="site-search" role="search" data-root="{html.escape(root)}" hidden>
<input id="search-input" type="search" placeholder="Search the docs" aria-label="Search the docs" autocomplete="off">
<p id="search-status" aria-live="polite"></p>
<ul id="search-results"></ul>
</div>
<ul>
{items}
</ul>
</nav>
<main class="content">
<header class="page-header"><h1 class="title" id="top">{html.escape(title)}</h1>
{desc}</header>
{body}
<footer>Generated from <code>{html.escape(source)}</code> by scripts/build_docs.py (nbdev's processors and nbconvert).</footer>
</main>
</body>
</html>
"""

# --------------------------------------------------------------------------------------------- search
# lunr.js does the search (tokenising, stemming, ranking); search-data.js lists the sections it indexes; search.js only
# builds the index on first use and lists the hits. Plain <script> files, so the site also works from file://.
VENDOR = REPO / 'scripts' / 'vendor'
SEARCH_FILES = ('lunr.min.js', 'search-data.js', 'search.js')

_SEARCH_JS = r"""// Site search: lunr.js (scripts/vendor/lunr) over the page sections listed in search-data.js.
(function () {
  var box = document.getElementById('site-search'), input = document.getElementById('search-input'),
      list = document.getElementById('search-results'), status = document.getElementById('search-status'),
      data = window.GENPRIOR_SEARCH, idx = null;
  if (!box || !input || !data || !window.lunr) return;
  var root = box.getAttribute('data-root') || '';
  box.hidden = false;
  function index() {
    if (!idx) idx = lunr(function () {
      this.ref('i'); this.field('t', {boost: 10}); this.field('k', {boost: 5}); this.field('p', {boost: 2}); this.field('x');
      data.docs.forEach(function (d, i) { this.add({i: String(i), t: d.t, k: d.k, p: d.p, x: d.x}); }, this);
    });
    return idx;
  }
  function show() {
    var terms = lunr.tokenizer(input.value).map(function (t) { return lunr.trimmer(t); })
                    .filter(function (t) { return t.toString(); });
    list.textContent = ''; status.textContent = '';
    if (!terms.length) return;
    var hits = index().query(function (q) {
      terms.forEach(function (t) {   // the word as typed (stemmed), and words that start with it
        q.term(t, {boost: 10});
        q.term(t, {usePipeline: false, wildcard: lunr.Query.wildcard.TRAILING});
      });
    });
    status.textContent = hits.length ? (hits.length > 20 ? 'top 20 of ' + hits.length : hits.length) + ' result' +
                                       (hits.length === 1 ? '' : 's') : 'no results';
    hits.slice(0, 20).forEach(function (h) {
      var d = data.docs[+h.ref], li = document.createElement('li'), a = document.createElement('a'),
          pg = document.createElement('span');
      a.href = root + d.u; a.textContent = d.t; pg.className = 'search-page'; pg.textContent = d.p;
      a.appendChild(pg); li.appendChild(a); list.appendChild(li);
    });
  }
  input.addEventListener('input', show);
  if (input.value) show();
})();
"""

class _Sections(HTMLParser):
    "Split a page body into sections at its h1-h3 headings: [anchor, heading text, prose text]; code, outputs and math skipped"
    SKIP = {'pre', 'script', 'style', 'math', 'svg', 'button'}
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.secs, self.skip, self.head, self.links = [['', '', []]], 0, None, []
    def handle_starttag(self, tag, attrs):
        if tag == 'a':   # show_doc's [source] link is not text of the section
            self.links.append('source-link' in (dict(attrs).get('class') or ''))
            self.skip += self.links[-1]
        if tag in self.SKIP: self.skip += 1
        elif tag in ('h1', 'h2', 'h3'): self.head = [dict(attrs).get('id') or '', []]
    def handle_endtag(self, tag):
        if tag == 'a' and self.links: self.skip -= self.links.pop()
        if tag in self.SKIP: self.skip = max(0, self.skip - 1)
        elif tag in ('h1', 'h2', 'h3') and self.head:
            hid, parts = self.head; self.head = None
            self.secs.append([hid, ' '.join(''.join(parts).replace('\u00b6', '').split()), []])
    def handle_data(self, d):
        if self.skip: return
        (self.head[1] if self.head else self.secs[-1][2]).append(d)

def _search_docs(pages: dict) -> list:
    "The search documents: one per section of every page, {u: link from the site root, t: title, k: name words, p: page, x: text}"
    docs = []
    for page, (title, desc, body) in pages.items():
        sp = _Sections(); sp.feed(body); sp.close()
        for i, (hid, head, parts) in enumerate(sp.secs):
            text = ' '.join(' '.join(parts).split())
            if i == 0: head, text = title, f'{desc} {text}'.strip()
            if not head and not text: continue
            docs.append({'u': page + (f'#{hid}' if hid and i else ''), 't': head, 'k': re.sub(r'[._]+', ' ', head),
                         'p': title, 'x': text[:4000]})
    return docs

def _write_search(dest: Path, pages: dict):
    "lunr.min.js (vendored), search-data.js (the sections), search.js (the glue) into the site"
    import json, shutil
    shutil.copyfile(VENDOR / 'lunr' / 'lunr.min.js', dest / 'lunr.min.js')
    data = json.dumps({'docs': _search_docs(pages)}, sort_keys=True, separators=(',', ':'))
    (dest / 'search-data.js').write_text(f'window.GENPRIOR_SEARCH = {data};\n', encoding='utf-8')
    (dest / 'search.js').write_text(_SEARCH_JS, encoding='utf-8')

def _inline_md(s: str) -> str:
    "Minimal inline markdown for the one-line summary: escape, then `code`"
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(str(s), quote=False))

# --------------------------------------------------------------------------------------------- links
_re_a = re.compile(r'<a\b([^>]*?)\bhref="([^"]*)"([^>]*)>(.*?)</a>', re.S)
_re_img = re.compile(r'<img\b[^>]*?>', re.S)
_re_src = re.compile(r'\bsrc="([^"]*)"')
_re_alt = re.compile(r'\balt="([^"]*)"')
_re_id = re.compile(r'\bid="([^"]+)"')

def _is_local(url: str) -> bool:
    s = urlsplit(url)
    return not s.scheme and not s.netloc and not url.startswith(('data:', 'mailto:', 'javascript:'))

@dataclass
class DocsBuild:
    "What `build_docs` did"
    dest: Path
    pages: dict = field(default_factory=dict)     # site path -> source notebook
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

def _fix_refs(page: str, body: str, *, site_base: str, nb_map: dict, nbs: Path, src_nb: Path, dest: Path,
              ids: dict, warn) -> str:
    "Make every local link and image of `body` (on site page `page`) resolve, or drop it with a warning"
    here_dir = posixpath.dirname(page)
    def site_path(url):
        "Site-root path (and fragment) a link points to, or None when it is not a link into the site"
        if site_base and url.startswith(site_base):
            url = url[len(site_base):].lstrip('/') or 'index.html'
            base = ''
        elif _is_local(url): base = here_dir
        else: return None
        s = urlsplit(url)
        path = unquote(s.path)
        if not path: return page, s.fragment
        tgt = posixpath.normpath(posixpath.join(base, path))
        if tgt.endswith('.ipynb'): tgt = nb_map.get((nbs / tgt).resolve(), tgt)  # the nbs tree mirrors the site
        elif tgt.endswith('/') or tgt == '.': tgt = posixpath.join(tgt, 'index.html')
        return posixpath.normpath(tgt), s.fragment

    def fix_a(m):
        pre, url, post, text = m.groups()
        res = site_path(html.unescape(url))
        if res is None: return m.group(0)
        tgt, frag = res
        if tgt not in ids and not (dest / tgt).is_file():
            warn(f'{page}: link to {url!r} does not resolve; written as text')
            return f'<span class="dead-link">{text}</span>'
        if frag and tgt in ids and frag not in ids[tgt]:
            warn(f'{page}: no anchor #{frag} on {tgt} (link {url!r}); linking the page')
            frag = ''
        new = ('' if tgt == page and frag else posixpath.relpath(tgt, here_dir or '.')) + (f'#{frag}' if frag else '')
        return f'<a{pre}href="{html.escape(new)}"{post}>{text}</a>'

    def fix_img(m):
        tag = m.group(0); sm = _re_src.search(tag)
        if not sm or not _is_local(html.unescape(sm.group(1))): return tag
        src = unquote(urlsplit(html.unescape(sm.group(1))).path)
        f = (src_nb.parent / src).resolve()
        if f.is_file():
            mime = mimetypes.guess_type(f.name)[0] or 'application/octet-stream'
            uri = f'data:{mime};base64,{base64.b64encode(f.read_bytes()).decode()}'
            return tag[:sm.start(1)] + uri + tag[sm.end(1):]
        alt = _re_alt.search(tag)
        warn(f'{page}: image {src!r} not found next to {src_nb.name}; written as text')
        return f'<span class="missing-figure">[missing figure {html.escape(src)}: {alt.group(1) if alt else ""}]</span>'

    return _re_a.sub(fix_a, _re_img.sub(fix_img, body))

# --------------------------------------------------------------------------------------------- build
def build_docs(nbs: str | Path | None = None, dest: str | Path | None = None, quiet: bool = False,
               n_workers: int = 0, no_cache: bool = False) -> DocsBuild:
    "Build the static site from the notebooks in `nbs` (settings.ini's nbs_path) into `dest` (its doc_path)"
    t0 = time.perf_counter()
    from nbdev.config import get_config
    nbs = Path(nbs).resolve() if nbs else None
    cfg = get_config(path=nbs or REPO)
    if not cfg.config_file.is_file(): cfg = get_config(path=REPO)   # e.g. a copy of nbs/ in a temporary folder
    root = cfg.config_path
    nbs = nbs or Path(cfg.nbs_path).resolve()
    dest = Path(dest).resolve() if dest else Path(cfg.doc_path).resolve()
    site, tagline = cfg.get('title', cfg.lib_name), cfg.get('description', '')
    site_base = (cfg.get('doc_host', '').rstrip('/') + '/' + cfg.get('doc_baseurl', '').strip('/')).rstrip('/') + '/' \
        if cfg.get('doc_host') else ''
    res = DocsBuild(dest=dest)
    def log(msg):
        if not quiet: print(msg, file=sys.stderr, flush=True)
    def warn(msg):
        res.warnings.append(msg); log(f'WARNING: {msg}')

    notebooks = _list_nbs(nbs)
    if not notebooks: raise FileNotFoundError(f'no notebooks in {nbs}')
    nb_map = {p.resolve(): doc_name(p, nbs) for p in notebooks}
    exporter = _exporter()
    lib = root / cfg.get('lib_path', cfg.lib_name)
    cache = None if no_cache else root / '_proc' / 'docs-cache'
    n_workers = n_workers or min(2, os.cpu_count() or 1)
    procd = _process_all(notebooks, root, lib, cache, n_workers, log)
    rendered = {}                                       # site path -> (title, description, body, src)
    seen = set()
    for p in notebooks:
        d = procd[p]
        for m in d['msgs']:
            if m not in seen: seen.add(m); log(f'  nbdev ({p.name}): {m}')
        nb = _prepare(d['nb'])
        body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'path': str(p.parent), 'name': p.stem}})
        rendered[nb_map[p.resolve()]] = (d['fm'].get('title') or p.stem, d['fm'].get('description', ''), body, p)
    nav = [(page, title) for page, (title, *_ ) in rendered.items()]
    ids = {page: set(_re_id.findall(body)) | {'top'} for page, (_, _, body, _) in rendered.items()}
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.rglob('*.html'):
        if old.relative_to(dest).as_posix() not in rendered: old.unlink()
    css = _CSS
    try:
        from pygments.formatters import HtmlFormatter
        css += '\n' + HtmlFormatter(style='default').get_style_defs('.highlight')
    except Exception: pass
    extra = nbs / 'styles.css'
    if extra.is_file(): css += '\n/* nbs/styles.css */\n' + extra.read_text(encoding='utf-8')
    (dest / 'styles.css').write_text(css, encoding='utf-8')
    (dest / '.nojekyll').write_text('')
    final = {}
    for page, (title, desc, body, src) in rendered.items():
        body = final[page] = _fix_refs(page, body, site_base=site_base, nb_map=nb_map, nbs=nbs, src_nb=src, dest=dest,
                                       ids=ids, warn=warn)
        out = dest / page
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_page(site=site, tagline=tagline, title=title, description=desc, body=body, nav=nav,
                             here=page, css='styles.css', source=f'{nbs.name}/{src.relative_to(nbs).as_posix()}'),
                       encoding='utf-8')
        res.pages[page] = src
    _write_search(dest, {page: (title, desc, final[page]) for page, (title, desc, _, _) in rendered.items()})
    res.seconds = time.perf_counter() - t0
    log(f'docs: {len(res.pages)} pages in {dest} ({res.seconds:.1f} s, {len(res.warnings)} warnings)')
    return res

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--nbs', help="notebook folder (default: settings.ini's nbs_path)")
    ap.add_argument('--dest', help="output folder (default: settings.ini's doc_path, _docs)")
    ap.add_argument('--strict', action='store_true', help='exit 1 when a link or image had to be dropped')
    ap.add_argument('--workers', type=int, default=0, help='processes for the nbdev step (default: up to 2)')
    ap.add_argument('--no-cache', action='store_true', help='ignore and do not write _proc/docs-cache')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args(argv)
    try: res = build_docs(a.nbs, a.dest, quiet=a.quiet, n_workers=a.workers, no_cache=a.no_cache)
    except DocsError as e:
        print(f'ERROR: {e}', file=sys.stderr); return 2
    print(f'{res.dest}/index.html')
    return 1 if a.strict and res.warnings else 0

if __name__ == '__main__': sys.exit(main())
