"""The three widgets of nbs/13_latent_space.ipynb in a real JupyterLab (JupyterLab 4, ipywidgets 8) in headless Chromium.

`bash run.sh lab-test` runs this file with `--browser` (without it the test is deselected, not skipped). It starts
JupyterLab from the project venv on 127.0.0.1 (a free port, a random token, configuration and runtime folders of its
own), opens a copy of the notebook, runs the cells that build the widgets, then for each widget moves a slider and
presses a button or picks a dropdown entry, and checks that the picture changes (the pixels of the <img> before and
after), that no cell errors, and that the browser console shows no errors. Screenshots go to out/lab-screenshots/.
The server, its kernel and the browser are stopped in all cases; the test fails if a process it started outlives it.
Chromium resolves no host names, so nothing here uses the network.
"""
import json, os, re, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
NB = REPO / 'nbs' / '13_latent_space.ipynb'
SHOTS = REPO / 'out' / 'lab-screenshots'
WIDGETS = ('interpolation_widget', 'latent_explorer', 'inverse_problem_explorer')

def cells_to_run(nb: dict) -> dict:
    """Indices of the code cells that build the widgets: the library and import cells before '## The shipped
    generators', the first code cell after it (generators and test images), and each cell that builds and shows a
    widget (`w = interpolation_widget(...)` ... `w`); {'setup': [...], widget function name: index}"""
    cells = nb['cells']
    src = [''.join(c['source']) if isinstance(c['source'], list) else c['source'] for c in cells]
    head = next(i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and src[i].startswith('## The shipped generators'))
    setup = [i for i in range(head) if cells[i]['cell_type'] == 'code' and re.match(r'#\|\s*(export|hide|default_exp)\b', src[i])
             and 'nbdev_export()' not in src[i]]
    setup.append(next(i for i in range(head, len(cells)) if cells[i]['cell_type'] == 'code'))
    out = {'setup': setup}
    for i in range(head, len(cells)):
        m = re.search(rf"^(\w+) = ({'|'.join(WIDGETS)})\(", src[i], re.M)
        if cells[i]['cell_type'] == 'code' and m and src[i].strip().splitlines()[-1].strip() == m.group(1):
            out.setdefault(m.group(2), i)
    assert set(WIDGETS) <= set(out), f'widget cells not found in {NB.name}: {set(WIDGETS) - set(out)}'
    return out

def test_cells_to_run():
    "The notebook still has what the lab test runs (fast: part of the normal suite)"
    idx = cells_to_run(json.loads(NB.read_text(encoding='utf-8')))
    assert len(idx['setup']) >= 3 and max(idx['setup']) < min(idx[w] for w in WIDGETS)

# ------------------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _ours(marker: str) -> list:
    "PIDs of live processes whose command line holds `marker` (this test's private folder): the server and its kernels"
    pids = []
    for d in Path('/proc').iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid(): continue
        try: cmd = (d / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
        except OSError: continue
        if marker in cmd: pids.append(int(d.name))
    return pids

class Lab:
    "JupyterLab on 127.0.0.1 serving `root`; everything it writes (config, runtime, settings) stays under `home`"
    def __init__(self, home: Path, root: Path):
        self.home, self.root, self.port, self.token = home, root, _free_port(), secrets.token_hex(24)
        self.url = f'http://127.0.0.1:{self.port}/'
        settings = home / 'settings'
        for name, value in {'@jupyterlab/notebook-extension/tracker': {'windowingMode': 'none'},   # every cell in the DOM
                            '@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False}
                            }.items():
            f = settings / f'{name}.jupyterlab-settings'; f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / 'config'), JUPYTER_RUNTIME_DIR=str(home / 'runtime'),
                   JUPYTER_DATA_DIR=str(home / 'data'), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / 'workspaces'), IPYTHONDIR=str(home / 'ipython'),
                   JUPYTER_PLATFORM_DIRS='1', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        env.pop('MPLBACKEND', None)   # the kernel draws inline
        self.log = open(home / 'jupyterlab.log', 'w')
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={self.port}',
             '--ServerApp.port_retries=0', f'--IdentityProvider.token={self.token}', f'--ServerApp.root_dir={root}',
             '--LabApp.expose_app_in_browser=True', '--LabApp.news_url=',
             # a safety net should this process be killed outright: idle kernels culled, then the idle server exits
             '--MappingKernelManager.cull_idle_timeout=600', '--MappingKernelManager.cull_interval=60',
             '--ServerApp.shutdown_no_activity_timeout=300',
             '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--LabApp.extension_manager=readonly',
             '--LanguageServerManager.autodetect=False', '--ServerApp.terminals_enabled=False']
            + (['--allow-root'] if os.geteuid() == 0 else []),
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_up(120)
        self.start_seconds = time.monotonic() - self.t0

    def api(self, path: str, method: str = 'GET'):
        req = urllib.request.Request(f'{self.url}api/{path}', method=method, headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return json.loads(body) if body else None

    def _wait_up(self, timeout: float):
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f'JupyterLab exited with {self.proc.returncode}:\n{(self.home / "jupyterlab.log").read_text()[-3000:]}')
            try:
                self.api('status'); return
            except OSError: time.sleep(0.5)
        raise TimeoutError(f'JupyterLab did not answer on {self.url} within {timeout} s')

    def stop(self) -> list:
        "Shut the kernels down, stop the server; PIDs that had to be killed (an empty list when all stopped cleanly)"
        try:
            for k in self.api('kernels'): self.api(f'kernels/{k["id"]}', 'DELETE')
        except Exception: pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT); self.proc.send_signal(signal.SIGINT)   # jupyter's stop: Ctrl-C twice
            try: self.proc.wait(30)
            except subprocess.TimeoutExpired: pass
        t = time.monotonic()
        while _ours(str(self.home)) and time.monotonic() - t < 10: time.sleep(0.25)
        killed = _ours(str(self.home))
        for pid in killed:
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass
        if self.proc.poll() is None:
            killed.append(self.proc.pid); self.proc.kill(); self.proc.wait(10)
        self.log.close()
        return killed

def _sigterm(signum, frame):   # `timeout` sends SIGTERM: unwind, so that the fixtures stop the server and the browser
    raise SystemExit(128 + signum)

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    old = signal.signal(signal.SIGTERM, _sigterm)
    home = tmp_path_factory.mktemp('lab-home'); root = home / 'root'; root.mkdir()
    shutil.copy(NB, root / NB.name)
    server = Lab(home, root)
    try: yield server
    finally:
        killed = server.stop()
        signal.signal(signal.SIGTERM, old)
        assert not killed, f'processes that did not stop with the server and had to be killed: {killed}'

# ------------------------------------------------------------------------------------------- the page
JS_IMG = """
const img = arguments[0];
if (!img || !img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext('2d').drawImage(img, 0, 0);
return c.toDataURL('image/png');
"""

def wait_for(fn, timeout: float, what: str, step: float = 0.2):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        v = fn()
        if v: return v
        time.sleep(step)
    raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')

class Notebook:
    "The open notebook, driven as a user would: cells run with the notebook's run command, widgets with mouse and keys"
    def __init__(self, drv, lab: Lab, name: str):
        self.drv = drv
        drv.get(f'{lab.url}lab/tree/{name}?token={lab.token}')
        wait_for(lambda: drv.execute_script(
            "const w = window.jupyterapp && jupyterapp.shell.currentWidget;"
            "return !!(w && w.content && w.content.widgets && w.content.widgets.length && w.sessionContext &&"
            " w.sessionContext.session && w.sessionContext.session.kernel &&"
            " w.sessionContext.session.kernel.connectionStatus === 'connected' && w.sessionContext.session.kernel.status === 'idle')"),
            180, 'the notebook to open and its kernel to start')

    def run(self, i: int, timeout: float = 180) -> list:
        "Run cell i (select it, then JupyterLab's notebook:run-cell); its outputs once the kernel is idle again"
        self.drv.execute_script(
            "const nb = jupyterapp.shell.currentWidget.content; nb.activeCellIndex = arguments[0]; nb.deselectAll();"
            "nb.widgets[arguments[0]].model.executionCount = null;"   # the saved count; set again when this run ends
            "jupyterapp.commands.execute('notebook:run-cell');", i)
        def done():
            return self.drv.execute_script(
                "const w = jupyterapp.shell.currentWidget, c = w.content.widgets[arguments[0]];"
                "const n = c.model.executionCount, k = w.sessionContext.session.kernel;"
                "return n !== null && k.status === 'idle' && !c.node.querySelector('.jp-InputPrompt').textContent.includes('*')"
                " ? {outputs: c.model.outputs.toJSON()} : null;", i)
        outs = wait_for(done, timeout, f'cell {i} to finish')['outputs']
        errors = [o for o in outs if o.get('output_type') == 'error']
        assert not errors, f"cell {i} raised {errors[0]['ename']}: {errors[0]['evalue']}\n" + \
            '\n'.join(re.sub(r'\x1b\[[0-9;]*m', '', l) for l in errors[0]['traceback'][-6:])
        return outs

    def output(self, i: int):
        "The output area of cell i, scrolled into view"
        el = self.drv.execute_script("return jupyterapp.shell.currentWidget.content.widgets[arguments[0]].outputArea.node;", i)
        self.drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
        return el

    def pixels(self, img) -> str:
        return wait_for(lambda: self.drv.execute_script(JS_IMG, img), 30, 'the image to load')

    def changes(self, img, before: str, what: str, timeout: float = 60) -> str:
        "Wait until the pixels of `img` differ from `before`; the new pixels"
        return wait_for(lambda: (lambda p: p if p and p != before else None)(self.drv.execute_script(JS_IMG, img)),
                        timeout, f'the image to change after {what}')

def drag(drv, handle, frac: float):
    "Drag a slider's handle with the mouse by `frac` of the slider's length"
    from selenium.webdriver import ActionChains
    width = drv.execute_script("return arguments[0].closest('.noUi-target').getBoundingClientRect().width;", handle)
    ActionChains(drv).move_to_element(handle).click_and_hold().move_by_offset(round(frac * width), 0).pause(0.2).release().perform()

def widget_root(area):
    "The rendered widget in an output area; fails when the widget did not render (text fallback or an error message)"
    text = area.text
    assert 'Error displaying widget' not in text and 'run the notebook to use it' not in text, f'widget not rendered: {text[:300]!r}'
    roots = area.find_elements('css selector', '.jupyter-widgets.widget-container, .lm-Widget.jupyter-widgets')
    assert roots, f'no widget view in the output: {area.get_attribute("innerHTML")[:300]!r}'
    return roots[0]

def shot(drv, el, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
    assert el.screenshot(str(SHOTS / f'{name}.png'))

@pytest.mark.browser
def test_widgets_in_jupyterlab(lab, chromium):
    drv = chromium
    shutil.rmtree(SHOTS, ignore_errors=True); SHOTS.mkdir(parents=True)
    idx = cells_to_run(json.loads(NB.read_text(encoding='utf-8')))
    t0 = time.monotonic()
    nb = Notebook(drv, lab, NB.name)
    t_open = time.monotonic() - t0
    for i in idx['setup']: nb.run(i)
    t_setup = time.monotonic() - t0 - t_open
    for w in WIDGETS: nb.run(idx[w])
    drv.save_screenshot(str(SHOTS / 'notebook.png'))

    # the interpolation slider: drag t; then the mode buttons
    area = nb.output(idx['interpolation_widget']); root = widget_root(area)
    imgs = root.find_elements('css selector', 'img')
    assert len(imgs) == 3, f'{len(imgs)} images in the interpolation widget'
    img = imgs[1]                                    # G(z(t)), between the two end images
    p0 = nb.pixels(img); shot(drv, root, 'interpolation-0')
    drag(drv, root.find_element('css selector', '.widget-slider .noUi-handle'), -0.25)   # t: 0.5 -> 0.25
    p1 = nb.changes(img, p0, 'moving the t slider'); shot(drv, root, 'interpolation-1-slider')
    root.find_element('xpath', ".//button[normalize-space()='slerp']").click()
    nb.changes(img, p1, "pressing 'slerp'"); shot(drv, root, 'interpolation-2-slerp')

    # the latent explorer: drag z[0]; then 'sample from prior'
    area = nb.output(idx['latent_explorer']); root = widget_root(area)
    img = root.find_element('css selector', 'img')
    p0 = nb.pixels(img); shot(drv, root, 'latent-0')
    drag(drv, root.find_elements('css selector', '.widget-slider .noUi-handle')[0], 0.3)   # z[0]: 0 -> 1.8
    p1 = nb.changes(img, p0, 'moving the z[0] slider'); shot(drv, root, 'latent-1-slider')
    root.find_element('xpath', ".//button[normalize-space()='sample from prior']").click()
    nb.changes(img, p1, "pressing 'sample from prior'"); shot(drv, root, 'latent-2-sample')

    # the inverse-problem explorer: pick another operator; then drag the noise slider
    from selenium.webdriver.support.ui import Select
    area = nb.output(idx['inverse_problem_explorer']); root = widget_root(area)
    imgs = root.find_elements('css selector', 'img')
    assert len(imgs) == 3, f'{len(imgs)} images in the inverse-problem explorer'
    img = imgs[2]                                    # the reconstruction
    p0 = nb.pixels(img); shot(drv, root, 'inverse-0')
    op = root.find_element('xpath', ".//div[contains(@class, 'widget-dropdown')][.//label[normalize-space()='operator']]//select")
    Select(op).select_by_visible_text('cs')
    p1 = nb.changes(img, p0, "choosing operator 'cs'", timeout=120); shot(drv, root, 'inverse-1-operator')
    noise = root.find_element('xpath', ".//div[contains(@class, 'widget-slider')][.//label[normalize-space()='noise std']]"
                                       "//*[contains(@class, 'noUi-handle')]")
    drag(drv, noise, 0.3)   # noise std: 0.05 -> 0.14
    nb.changes(img, p1, 'moving the noise slider', timeout=120); shot(drv, root, 'inverse-2-noise')
    drv.save_screenshot(str(SHOTS / 'notebook-after.png'))

    logs = drv.get_log('browser')
    (SHOTS / 'console.json').write_text(json.dumps(logs, indent=1))
    severe = [e for e in logs if e['level'] == 'SEVERE']
    assert not severe, f'browser console errors: {severe}'
    widget_msgs = [e for e in logs if re.search(r'widget|comm|model', e['message'], re.I) and e['level'] in ('SEVERE', 'WARNING')]
    assert not widget_msgs, f'widget warnings in the browser console: {widget_msgs}'
    print(f'\nlab test: server up in {lab.start_seconds:.1f} s, notebook open and kernel idle in {t_open:.1f} s, '
          f'setup cells in {t_setup:.1f} s, widgets and interactions in {time.monotonic() - t0 - t_open - t_setup:.1f} s')
