"""The documentation website: scripts/build_docs.py builds one page per notebook whose links all resolve.

The browser test (headless Debian Chromium through Selenium) runs only with `pytest tests/test_docs.py --browser`,
i.e. `bash run.sh browser-test`; without the option it is deselected, not skipped.
"""
import functools, json, re, shutil, sys, threading, urllib.request
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
    "The ids, local references and nav of one HTML page"
    def __init__(self):
        super().__init__(); self.ids, self.refs, self.nav_links, self._nav = set(), [], [], 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        if tag == 'nav': self._nav += 1
        for k in ('href', 'src'):
            if a.get(k) is not None: self.refs.append((tag, k, a[k]))
        if tag == 'a' and self._nav and a.get('href'): self.nav_links.append(a['href'])
    def handle_endtag(self, tag):
        if tag == 'nav': self._nav -= 1

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

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--disable-dev-shm-usage', '--window-size=1280,900',
              f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    # the driver path is given, so Selenium Manager never runs (it would try to download a driver)
    drv = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()

@pytest.mark.browser
def test_pages_in_chromium(served, browser):
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
