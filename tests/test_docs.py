"""The documentation website: scripts/build_docs.py builds one page per notebook whose links all resolve.

The browser test (headless Debian Chromium through Selenium) runs only with `pytest tests/test_docs.py --browser`,
i.e. `bash run.sh browser-test`; without the option it is deselected, not skipped.
"""
import collections, functools, hashlib, json, re, shutil, sys, threading, time, urllib.request
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
import pytest

REPO = Path(__file__).resolve().parents[1]
NBS = REPO / 'nbs'
sys.path.insert(0, str(REPO / 'scripts'))
import build_docs  # noqa: E402

MINIMAL_INDEX = {"cells": [{"cell_type": "markdown", "id": "a1", "metadata": {},
                            "source": ["# genprior_nb\n", "> Temporary home page for the docs test."]}],
                 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
                 "nbformat": 4, "nbformat_minor": 5}

def documented(nbs: Path) -> list:
    "The notebooks that get a page: none whose name or folder starts with `_` or `.`"
    return sorted(p for p in nbs.rglob('*.ipynb') if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts))

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Build the site once for this module (into a temporary folder; nbs/ is copied only if it has no index.ipynb)"
    nbs = NBS
    if not (NBS / 'index.ipynb').exists():
        nbs = tmp_path_factory.mktemp('nbs')
        shutil.copytree(NBS, nbs, dirs_exist_ok=True, symlinks=True)
        (nbs / 'index.ipynb').write_text(json.dumps(MINIMAL_INDEX))
    dest = tmp_path_factory.mktemp('docs') / '_docs'
    res = build_docs.build_docs(nbs, dest, quiet=True)
    return nbs, dest, res

class Page(HTMLParser):
    "The ids (and each one's tag and text), local references and nav of one HTML page"
    def __init__(self):
        super().__init__(); self.ids, self.refs, self.nav_links, self._nav = set(), [], [], 0
        self.id_list, self._open = [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a:
            self.ids.add(a['id']); self.id_list.append([a['id'], tag, '']); self._open.append(self.id_list[-1])
        if tag == 'nav': self._nav += 1
        for k in ('href', 'src'):
            if a.get(k) is not None: self.refs.append((tag, k, a[k]))
        if tag == 'a' and self._nav and a.get('href'): self.nav_links.append(a['href'])
    def handle_endtag(self, tag):
        if tag == 'nav': self._nav -= 1
        if self._open and self._open[-1][1] == tag: self._open.pop()
    def handle_data(self, d):
        for e in self._open[-1:]:
            if len(e[2]) < 60: e[2] += d

def parse(f: Path) -> Page:
    p = Page(); p.feed(f.read_text(encoding='utf-8')); return p

def local(url: str) -> bool:
    s = urlsplit(url)
    return not s.scheme and not s.netloc

def test_site_pages_nav_and_links(site):
    nbs, dest, res = site
    want = {build_docs.doc_name(p, nbs) for p in documented(nbs)}
    assert want, 'no notebooks found'
    assert 'index.html' in want and (dest / 'index.html').is_file()
    assert build_docs.doc_name(NBS / '02_operators.ipynb', NBS) == 'operators.html'   # nbdev's naming
    assert build_docs.doc_name(NBS / '09_pretrained.ipynb', NBS) == 'pretrained.html'
    pages = {f.relative_to(dest).as_posix() for f in dest.rglob('*.html')}
    assert pages == want
    parsed = {pg: parse(dest / pg) for pg in sorted(pages)}
    for pg, p in parsed.items():
        here = (dest / pg).parent
        nav = {(here / unquote(h)).resolve().relative_to(dest.resolve()).as_posix() for h in p.nav_links}
        assert nav >= want, f'{pg}: nav lacks {want - nav}'
        assert 'top' in p.ids
        for tag, attr, url in p.refs:
            if not local(url) or url.startswith('data:'): continue
            s = urlsplit(url)
            tgt = (here / unquote(s.path)).resolve() if s.path else (dest / pg).resolve()
            assert tgt.is_file(), f'{pg}: <{tag} {attr}="{url}"> points to a missing file'
            if s.fragment:
                rel = tgt.relative_to(dest.resolve()).as_posix()
                assert rel in parsed, f'{pg}: anchor link into non-page {url}'
                assert s.fragment in parsed[rel].ids, f'{pg}: no id "{s.fragment}" on {rel} ({url})'
    # the pages have content: a title, show_doc signatures, figures embedded
    ops = (dest / 'operators.html').read_text(encoding='utf-8')
    assert re.search(r'<h1 class="title" id="top">[^<]+</h1>', ops)
    assert 'id="linearoperator"' in ops and 'class="highlight' in ops
    assert '#| ' not in ops and 'show_doc(' not in ops and 'default_exp' not in ops   # directives and hidden cells gone
    assert any('src="data:image/png;base64,' in (dest / pg).read_text(encoding='utf-8') for pg in pages)

def test_notebook_links_and_images_resolve(site):
    "The builder writes an unresolvable link or image as text and reports it; the notebooks should have none"
    _, _, res = site
    assert res.warnings == [], '\n'.join(res.warnings)

def test_build_is_deterministic(site, tmp_path):
    nbs, dest, _ = site
    build_docs.build_docs(nbs, tmp_path / 'again', quiet=True)   # reuses nbdev's processed notebooks from the cache
    for f in sorted(dest.rglob('*')):
        if f.is_file(): assert (tmp_path / 'again' / f.relative_to(dest)).read_bytes() == f.read_bytes(), f.name

def test_no_duplicate_ids(site):
    """Every id (so every anchor) is unique on its page. The builder gives repeated prose headings pandoc's -1, -2
    suffixes; the same object documented twice by show_doc keeps one id and is reported here."""
    _, dest, _ = site
    dups = {}
    for f in sorted(dest.rglob('*.html')):
        p = parse(f)
        n = collections.Counter(i for i, *_ in p.id_list)
        d = {i: [f'<{t}> {x.strip()[:40]!r}' for j, t, x in p.id_list if j == i] for i, c in n.items() if c > 1}
        if d: dups[f.relative_to(dest).as_posix()] = d
    assert not dups, 'duplicate ids (page: id: the elements that carry it):\n' + '\n'.join(
        f'  {pg}: {i}: {", ".join(els)}' for pg, d in dups.items() for i, els in d.items())

def test_heading_ids_rule():
    "API headings keep their plain name; prose headings and a differently-spelt API name get suffixes; same API text stays"
    H = build_docs._HID
    body = ''.join(f'<h2 id="{H}{i}{H}"><a href="#{H}{i}{H}">x</a></h2>' for i in range(5))
    heads = [('smoothness', ''), ('smoothness', 'Smoothness'), ('smoothness', 'smoothness'), ('top', ''),
             ('norm', 'norm')]
    ids = re.findall(r'id="([^"]+)"', build_docs._heading_ids(body, heads))
    assert ids == ['smoothness-2', 'smoothness', 'smoothness-1', 'top-1', 'norm']
    twice = build_docs._heading_ids(body + f'<h3 id="{H}5{H}"></h3>', heads + [('norm', 'norm')])
    assert re.findall(r'id="([^"]+)"', twice)[-2:] == ['norm', 'norm']

def _render_md(md: str) -> str:
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(md)])
    return build_docs._exporter().from_notebook_node(nb)[0]

def test_table_cells_with_norms():
    "A code span with escaped pipes in a GFM table cell shows pipes (as on GitHub and in JupyterLab); math keeps TeX's \\|"
    body = _render_md('| method | objective |\n|---|---|\n| `csgm` | `\\|\\|A G(z) - y\\|\\|^2` and $\\|x\\|_2$ |\n\n'
                      'Outside a table `a\\|b` keeps its backslash.')
    assert '<td><code>||A G(z) - y||^2</code>' in body, body
    assert '<code>a\\|b</code>' in body
    cell = re.search(r'<td><code>\|\|A.*?</td>', body, re.S).group(0)
    assert '\u2016' in cell or '\\|x\\|' in cell   # MathML's double bar (latex2mathml), or the TeX shown as code

def test_no_escaped_pipes_in_tables(site):
    _, dest, _ = site
    for f in sorted(dest.rglob('*.html')):
        cells = re.findall(r'<t[dh]>(.*?)</t[dh]>', f.read_text(encoding='utf-8'), re.S)
        bad = [c for c in cells if '\\|' in re.sub(r'<math.*?</math>', '', c, flags=re.S)]
        assert not bad, f'{f.name}: table cells show escaped pipes: {bad[:3]}'
    lo = (dest / 'latent_opt.html').read_text(encoding='utf-8')
    assert '<code>||A G(z) - y||^2 + lam ||z||^2</code>' in lo

def test_test_fail_shown_as_example():
    "fastcore's test_fail, written for the test runner, shows on the page as the call and the message it raises"
    src = ("x = f(2)\n# bad input\nfct.test_fail(lambda: f(-1),\n              contains='x must be > 0')\nfct.test_eq(x, 4)\n"
           "if not ok: fct.test_fail(lambda: g(a,  b), contains=f'{a}: bad')\ny = 1; test_fail(lambda: h())\n"
           "test_fail(h)\nfct.test_fail(lambda x: x, contains=3)\n# end")
    assert build_docs._readable_test_fail(src) == (
        "x = f(2)\n# bad input\nf(-1)  # raises: x must be > 0\nfct.test_eq(x, 4)\n"
        "if not ok:\n    g(a,  b)  # raises: \u2026: bad\ny = 1; test_fail(lambda: h())\n"
        "h()  # raises an error\nfct.test_fail(lambda x: x, contains=3)\n# end")   # shared line, odd forms: as written
    assert build_docs._readable_test_fail('%time f(1)\ntest_fail(f)') == '%time f(1)\ntest_fail(f)'   # not Python: as is

def test_pages_show_no_test_fail(site):
    "No page shows a test_fail call (code cells are highlighted: the name is a span of its own)"
    _, dest, _ = site
    shown = [f.name for f in sorted(dest.rglob('*.html')) if 'test_fail</span>' in f.read_text(encoding='utf-8')]
    assert not shown, f'pages that show test_fail: {shown}'

# ------------------------------------------------------------------------------------------- sliders without a kernel
class _Frames(HTMLParser):
    "The precomputed-frame sliders of a page: [data-n, data-h, sprite PNG bytes, range max, number of choices]"
    def __init__(self):
        super().__init__(); self.found, self.depth = [], 0
    def handle_starttag(self, tag, attrs):
        import base64
        a = dict(attrs)
        if tag == 'div' and 'gp-frames' in (a.get('class') or '').split():
            self.found.append([int(a['data-n']), int(a['data-h']), None, None, 0]); self.depth = 1; return
        if not self.depth: return
        if tag == 'div': self.depth += 1
        cur = self.found[-1]
        if 'gp-frames-view' in (a.get('class') or ''):
            cur[2] = base64.b64decode(re.search(r'url\(data:image/png;base64,([^)]+)\)', a['style']).group(1))
        if tag == 'input' and a.get('type') == 'range': cur[3] = int(a['max'])
        if tag == 'option': cur[4] += 1
    def handle_endtag(self, tag):
        if self.depth and tag == 'div': self.depth -= 1

def frame_sliders(html_text: str) -> list:
    p = _Frames(); p.feed(html_text); return p.found

def test_latent_space_sliders_without_kernel(site):
    "The interpolation slider and the latent explorer are on the page as one sprite PNG each, driven by a range input"
    _, dest, _ = site
    page = (dest / 'latent_space.html').read_text(encoding='utf-8')
    sl = frame_sliders(page)
    assert len(sl) == 2, f'{len(sl)} frame sliders on latent_space.html'
    for (n, h, png, mx, n_choices), (want_n, want_choices) in zip(sl, [(21, 2), (13, 8)]):
        assert (n, mx, n_choices) == (want_n, want_n - 1, want_choices)
        assert png[:8] == b'\x89PNG\r\n\x1a\n'
        w, rows = int.from_bytes(png[16:20], 'big'), int.from_bytes(png[20:24], 'big')
        assert rows == n_choices * n * w == n_choices * n * h // 4, (w, rows)   # square frames, zoom 4
        assert len(png) < 80_000, len(png)
    assert page.count('<script>(function (s)') == 2
    assert (dest / 'latent_space.html').stat().st_size < 2_000_000

# ------------------------------------------------------------------------------------------- search
def search_docs(dest: Path) -> list:
    s = (dest / 'search-data.js').read_text(encoding='utf-8')
    assert s.startswith('window.GENPRIOR_SEARCH = ')
    return json.loads(s[s.index('{'):s.rindex('}') + 1])['docs']

def test_vendored_lunr_matches_its_lock():
    v = REPO / 'scripts' / 'vendor'
    lock = json.loads((v / 'package-lock.json').read_text())['packages']['node_modules/lunr']['version']
    js = (v / 'lunr' / 'lunr.min.js').read_bytes()
    assert re.search(rb'lunr - http://lunrjs.com - .* - (\S+)', js[:300]).group(1).decode() == lock
    assert json.loads((v / 'package.json').read_text())['devDependencies']['lunr'] == lock
    readme = (v / 'README.md').read_text()
    assert f'| {lock} | MIT' in readme and hashlib.sha256(js).hexdigest() in readme

def test_search_index_lists_every_page(site):
    nbs, dest, _ = site
    docs = search_docs(dest)
    pages = {f.relative_to(dest).as_posix() for f in dest.rglob('*.html')}
    assert {d['u'].split('#')[0] for d in docs} == pages
    parsed = {pg: parse(dest / pg) for pg in pages}
    for d in docs:
        pg, _, frag = d['u'].partition('#')
        assert not frag or frag in parsed[pg].ids, d['u']
        assert d['t'] and d['p'] and set(d) == {'u', 't', 'k', 'p', 'x'}
    titles = {d['t'] for d in docs}
    assert {'csgm', 'LinearOperator', 'interpolation_widget'} <= titles   # show_doc entries are sections of their own
    for f in (dest / x for x in build_docs.SEARCH_FILES): assert f.is_file() and f.stat().st_size > 500, f
    assert (dest / 'lunr.min.js').read_bytes() == (REPO / 'scripts/vendor/lunr/lunr.min.js').read_bytes()
    for pg, p in parsed.items():
        assert {'site-search', 'search-input', 'search-results'} <= p.ids, pg
        scripts = [u for t, k, u in p.refs if t == 'script']
        assert [s.rsplit('/', 1)[-1] for s in scripts] == list(build_docs.SEARCH_FILES), (pg, scripts)

# ------------------------------------------------------------------------------------------- browser
class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture(scope='module')
def served(site):
    _, dest, _ = site
    srv = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(dest)))
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    yield dest, f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown(); srv.server_close()

@pytest.mark.browser
def test_pages_in_chromium(served, chromium):
    browser = chromium
    dest, base = served
    shots = REPO / 'out' / 'docs-screenshots'
    shutil.rmtree(shots, ignore_errors=True); shots.mkdir(parents=True)
    pages = sorted(f.relative_to(dest).as_posix() for f in dest.rglob('*.html'))
    pages.remove('index.html'); pages.insert(0, 'index.html')
    checked = {}
    for pg in pages:
        browser.get(urljoin(base, pg))
        assert browser.execute_script('return document.readyState') == 'complete'
        severe = [e for e in browser.get_log('browser') if e['level'] == 'SEVERE']
        assert not severe, f'{pg}: console errors {severe}'
        assert browser.find_element('css selector', 'nav#site-nav').is_displayed()
        n_nav = browser.execute_script("return document.querySelectorAll('nav#site-nav li a').length")
        assert n_nav == len(pages), f'{pg}: {n_nav} nav entries for {len(pages)} pages'
        bad = browser.execute_script("return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                                     ".map(i => i.src.slice(0, 80))")
        assert not bad, f'{pg}: images that did not load: {bad}'
        hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for h in hrefs:
            if not h.startswith(base): continue
            url = h.split('#')[0]
            if url not in checked:
                with urllib.request.urlopen(url, timeout=10) as r: checked[url] = r.status
            assert checked[url] == 200, f'{pg}: {url} answered {checked[url]}'
        height = browser.execute_script('return document.documentElement.scrollHeight')
        browser.execute_cdp_cmd('Emulation.setDeviceMetricsOverride',   # the whole page, up to 15000 px
                                {'width': 1280, 'height': min(height, 15000), 'deviceScaleFactor': 1, 'mobile': False})
        assert browser.save_screenshot(str(shots / (pg.replace('/', '__')[:-5] + '.png')))
        browser.execute_cdp_cmd('Emulation.clearDeviceMetricsOverride', {})
    assert len(list(shots.glob('*.png'))) == len(pages)

def _search(browser, query: str, timeout: float = 10) -> list:
    "Type `query` into the search box of the open page; the result links (href, text) once they appear"
    box = browser.find_element('css selector', '#search-input')
    assert box.is_displayed(), 'the search box is hidden (search.js did not run)'
    box.clear(); box.send_keys(query)
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        hits = browser.execute_script("return Array.from(document.querySelectorAll('#search-results a'))"
                                      ".map(a => [a.href, a.textContent])")
        if hits: return hits
        time.sleep(0.1)
    return []

@pytest.mark.browser
def test_search_in_chromium(served, chromium):
    "Typing into the search box lists sections that link to pages of the site, over http and from file:// (offline)"
    dest, base = served
    browser = chromium
    pages = {f.relative_to(dest).as_posix() for f in dest.rglob('*.html')}
    for start in (urljoin(base, 'operators.html'), (dest / 'index.html').resolve().as_uri()):
        browser.get(start)
        root = start.rsplit('/', 1)[0] + '/'
        hits = _search(browser, 'slerp')
        assert hits, f'{start}: no results for "slerp"'
        for href, text in hits:
            assert href.startswith(root) and href[len(root):].split('#')[0] in pages, href
        assert any('latent_space.html' in h for h, _ in hits)
        hits = _search(browser, 'make_oper')    # a prefix of a function name finds its show_doc section
        assert any(h.endswith('operators.html#make_operator') for h, _ in hits), hits
        assert _search(browser, 'qwxzyv', timeout=1) == []
        assert browser.find_element('css selector', '#search-status').text == 'no results'
        assert not [e for e in browser.get_log('browser') if e['level'] == 'SEVERE']
    browser.get(urljoin(base, 'index.html'))
    href = _search(browser, 'tikhonov')[0][0]
    browser.find_element('css selector', '#search-results a').click()
    assert browser.current_url == href and browser.execute_script('return document.readyState') == 'complete'
    shots = REPO / 'out' / 'docs-screenshots'; shots.mkdir(parents=True, exist_ok=True)
    _search(browser, 'restarts')
    assert browser.save_screenshot(str(shots / '_search.png'))

@pytest.mark.browser
def test_frame_sliders_in_chromium(served, chromium):
    "Moving each docs slider (keyboard on the range input) and picking another mode/coordinate changes the picture"
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    dest, base = served
    drv = chromium
    drv.get(urljoin(base, 'latent_space.html'))
    sliders = drv.find_elements('css selector', '.gp-frames')
    assert len(sliders) == 2
    shots = REPO / 'out' / 'docs-screenshots'; shots.mkdir(parents=True, exist_ok=True)
    for k, sl in enumerate(sliders):
        drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", sl)
        view, rng = sl.find_element('css selector', '.gp-frames-view'), sl.find_element('css selector', 'input[type=range]')
        out = sl.find_element('css selector', 'output')
        pic0, val0 = view.screenshot_as_png, out.text
        rng.send_keys(*[Keys.ARROW_RIGHT] * 4)
        pic1, val1 = view.screenshot_as_png, out.text
        assert val1 != val0 and pic1 != pic0, f'slider {k}: the picture or the value did not change ({val0} -> {val1})'
        rng.send_keys(*[Keys.ARROW_LEFT] * 4)
        assert view.screenshot_as_png == pic0 and out.text == val0, f'slider {k}: back at the start, not the same picture'
        n = int(sl.get_attribute('data-n'))   # 3/4 along: the modes differ between the ends, the coordinates away from 0
        rng.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * round(0.75 * (n - 1)))
        pic2 = view.screenshot_as_png
        sel = Select(sl.find_element('css selector', 'select'))
        sel.select_by_index(len(sel.options) - 1)
        assert view.screenshot_as_png != pic2, f'slider {k}: another choice did not change the picture'
        assert sl.screenshot(str(shots / f'_frames-{k}.png'))
    assert not [e for e in drv.get_log('browser') if e['level'] == 'SEVERE']
