"""A real browser: JupyterLab opens the lesson in headless Chromium (driven by Playwright), runs all cells, and
the widgets render and answer a slider. Debian's chromium is used as it is (`make test` installs it as root);
Playwright never downloads a browser. Without chromium or playwright the tests are skipped, with the reason."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pretrain_lessons.paths import project_root

LESSON = "01_loss_formula.ipynb"
PROBE = "widget_probe.ipynb"
SCREENSHOTS = project_root() / "reports" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SETTINGS = {  # no news or update checks (no network), every cell in the page (no windowing)
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
}
# What remains of a cell's outputs once the sliders themselves are taken out: text, and the images' data.
OUTPUT_SIGNATURE = """(el) => {
  const area = el.closest('.jp-OutputArea') || el.parentElement;
  const copy = area.cloneNode(true);
  copy.querySelectorAll('.widget-slider').forEach(s => s.remove());
  const images = Array.from(copy.querySelectorAll('img')).map(i => i.src.length + ':' + i.src.slice(-48));
  const svgs = Array.from(copy.querySelectorAll('svg')).map(s => s.innerHTML.length);
  return copy.innerText + '|' + images.join(',') + '|' + svgs.join(',');
}"""
PROMPTS = "() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim())"


def chromium_path() -> str | None:
    """Debian's chromium (PRETRAIN_LESSONS_CHROMIUM may name another Chromium or Chrome)."""
    for candidate in (os.environ.get("PRETRAIN_LESSONS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return ("no Chromium found at /usr/bin/chromium (as root: apt-get install chromium; or set "
                "PRETRAIN_LESSONS_CHROMIUM to a Chromium or Chrome executable)")
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_notebook():
    """A minimal widget notebook: a slider whose label shows -log p, so the machinery is tested on its own."""
    nb = new_notebook(cells=[new_markdown_cell("# Widget probe"), new_code_cell(
        "import math\nimport ipywidgets as widgets\nfrom IPython.display import display\n"
        "p = widgets.FloatSlider(value=0.5, min=0.01, max=1.0, step=0.01, description='p(y|x)')\n"
        "loss = widgets.HTML()\n"
        "def show(change=None):\n    loss.value = f'<b>loss = {-math.log(p.value):.3f}</b>'\n"
        "p.observe(show, 'value')\nshow()\ndisplay(widgets.VBox([p, loss]))"), new_code_cell("print('done')")])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of notebooks/ (nothing is changed in place), with a token, on a free port."""
    reason = missing()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(project_root() / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nbformat.write(probe_notebook(), root / PROBE)
    for name, text in SETTINGS.items():
        (base / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (base / "settings" / name).write_text(text)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "PRETRAIN_LESSONS_HOME": str(project_root()), "PRETRAIN_LESSONS_SCALE": "smoke",
           "PRETRAIN_LESSONS_PROGRESS": "off"}
    env.pop("MPLBACKEND", None)  # figures inline, as a learner sees them
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = base / "jupyterlab.log"
    with open(log, "w") as sink:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root, "log": log}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own session: it and the kernels it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def menu(page, title: str, item: str) -> None:
    """Click a menu item of JupyterLab's menu bar, as a person would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(title)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def accept_dialogs(page) -> None:
    """Answer JupyterLab's dialogs (such as "Select Kernel") with their default button."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()


def start_kernel(lab, name: str) -> None:
    """Start the notebook's kernel through the server's REST API (the page then waits until it is idle)."""
    def call(method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{lab['url']}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"token {lab['token']}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    session = call("POST", "/api/sessions", {"path": name, "name": name, "type": "notebook",
                                             "kernel": {"name": "python3"}})
    assert session["kernel"]["id"], session


def wait_for_kernel(page, timeout: float = 90) -> None:
    """Wait until the notebook has a kernel and it is idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        accept_dialogs(page)
        status = page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status")
        kernel = page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").all_inner_texts()
        if status == "idle" and kernel and "No Kernel" not in kernel[0]:
            return
        time.sleep(0.5)
    shot(page, "kernel", "failure")
    pytest.fail(f"no idle kernel after {timeout:.0f} s")


def open_and_run_all(browser, lab, name: str, timeout: float = 240):
    """Open a notebook in JupyterLab, run all cells from the Run menu, wait until the kernel is done; the page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    start_kernel(lab, name)  # before the page opens, so that JupyterLab attaches to it and asks nothing
    # A workspace of its own, so that JupyterLab opens this notebook alone (no tabs restored from another test).
    page.goto(f"{lab['url']}/lab/workspaces/{Path(name).stem}/tree/{name}?token={lab['token']}")
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell")
    wait_for_kernel(page)
    menu(page, "Edit", "Clear Outputs of All Cells")  # stored outputs and prompts would look like a finished run
    page.wait_for_function(f"() => ({PROMPTS})().every(p => p === '[ ]:')")
    deadline, started, clicked, quiet = time.monotonic() + timeout, False, 0.0, 0
    while time.monotonic() < deadline:
        accept_dialogs(page)
        prompts = page.evaluate(PROMPTS)
        started = started or any(p != "[ ]:" for p in prompts)
        if not started and time.monotonic() - clicked > 15:  # first time, or the click went nowhere
            menu(page, "Run", "Run All Cells")
            clicked = time.monotonic()
        idle = page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status") == "idle"
        # Done: every cell has run; or nothing is queued any more (a cell failed), for three polls in a row.
        quiet = quiet + 1 if started and idle and "[*]:" not in prompts else 0
        if quiet and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts) or quiet >= 3:
            return page, prompts
        time.sleep(0.5)
    shot(page, name, "timeout")
    pytest.fail(f"{name}: the kernel was still busy after {timeout:.0f} s (prompts {page.evaluate(PROMPTS)})")


def shot(page, name: str, suffix: str = "") -> Path:
    """Save a screenshot under reports/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{Path(name).stem}{'_' + suffix if suffix else ''}.png"
    page.screenshot(path=str(path))
    return path


def errors_in_page(page) -> list[str]:
    """Tracebacks shown in the notebook's outputs."""
    texts = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    return [t[-1500:] for t in texts if "Traceback" in t or re.search(r"^\w+(Error|Exception)\b", t, re.M)]


def check_run(page, name: str, prompts: list[str]) -> None:
    """Every code cell ran (a number in its prompt), no traceback, and no widget failed to display."""
    errors = errors_in_page(page)
    if errors or not all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
        path = shot(page, name, "failure")
        pytest.fail(f"{name} did not run through (prompts {prompts}; screenshot {path.name}):\n" + "\n\n".join(errors))
    assert "Error displaying widget" not in page.inner_text(".jp-NotebookPanel")


def settle(page, slider, timeout: float = 20) -> None:
    """Wait until the kernel is idle and the slider's output has stopped changing."""
    deadline, last, steady = time.monotonic() + timeout, None, 0
    while time.monotonic() < deadline and steady < 3:
        now = slider.evaluate(OUTPUT_SIGNATURE)
        idle = page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status") == "idle"
        steady = steady + 1 if idle and now == last else 0
        last = now
        time.sleep(0.3)


def move_slider_and_watch(page, name: str) -> tuple[str, str, int]:
    """Move sliders with the keyboard, one after the other, until one changes its cell's output (besides itself)."""
    sliders = page.locator(".jp-OutputArea .widget-slider")
    sliders.first.wait_for(timeout=30_000)
    assert page.locator(".jupyter-widgets").count() >= 1
    for index in range(min(sliders.count(), 4)):
        slider = sliders.nth(index)
        slider.scroll_into_view_if_needed()
        before = slider.evaluate(OUTPUT_SIGNATURE)
        handle = slider.locator(".noUi-handle").first
        for key in ("ArrowRight", "ArrowLeft"):  # the other way if the handle starts at its maximum
            handle.focus()
            for _ in range(5):
                page.keyboard.press(key)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                after = slider.evaluate(OUTPUT_SIGNATURE)
                if after != before:
                    settle(page, slider)
                    return before, slider.evaluate(OUTPUT_SIGNATURE), index
                time.sleep(0.25)
    shot(page, name, "failure")
    pytest.fail(f"{name}: moving a slider changed no output")


def test_widget_probe_in_a_real_browser(browser, lab):
    """The machinery alone: JupyterLab renders ipywidgets in Chromium and a slider reaches the kernel and back."""
    page, prompts = open_and_run_all(browser, lab, PROBE, timeout=60)
    check_run(page, PROBE, prompts)
    before, after, _ = move_slider_and_watch(page, PROBE)
    assert "loss = 0.693" in before and after != before
    page.wait_for_function("() => document.querySelector('.widget-readout').textContent.trim() === '0.55'")
    page.wait_for_function("() => document.querySelector('.widget-html').innerText.includes('loss = 0.598')")
    page.close()


def test_loss_formula_lesson_in_a_real_browser(browser, lab):
    """01_loss_formula in JupyterLab: all cells run, its widgets render, a slider changes what it shows."""
    if not (lab["root"] / LESSON).exists():
        pytest.skip(f"{LESSON} is not in notebooks/ yet")
    page, prompts = open_and_run_all(browser, lab, LESSON)
    check_run(page, LESSON, prompts)
    before, after, index = move_slider_and_watch(page, LESSON)
    path = shot(page, LESSON)
    print(f"\n{LESSON}: slider {index + 1} changed its output; screenshot reports/screenshots/{path.name}")
    assert path.stat().st_size > 10_000
    page.close()
