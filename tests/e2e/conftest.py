"""Real-browser fixtures: `streamlit run app.py` headless on a free port, driven by Debian's chromium."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(script: str = "app.py"):
    """`streamlit run <script>` (a path from the repository root) headless on a free port, started fresh; yields
    its URL."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="session")
def app_url():
    """Start the app once per test session; yields its URL."""
    with serve_app() as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


# the page is idle: Streamlit reports no script run (its app root's script state), no status widget, spinner or
# skeleton shows (a chart shows a skeleton until plotly.js has loaded, a moment after the run ends), and it has stayed
# so for QUIET_MS (a run an action asked for may reach the server a moment later on a slow machine)
QUIET_MS = 700
IDLE = """quiet => {
    const app = document.querySelector('[data-testid="stApp"]');
    const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
        || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
        || document.querySelector(
            '[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-testid="stSkeleton"]');
    const now = performance.now();
    if (busy || window.__idleSince === undefined) window.__idleSince = busy ? undefined : now;
    return !busy && now - window.__idleSince >= quiet;
}"""


def wait_idle(page, timeout: float = 300_000) -> None:
    """Wait until the app has finished running and has stayed idle for QUIET_MS (see IDLE)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.evaluate("() => { window.__idleSince = undefined; }")
    page.wait_for_function(IDLE, arg=QUIET_MS, timeout=timeout, polling=100)


def open_view(page, app_url: str, url_path: str) -> None:
    """Open a view by its URL path (e.g. 'model') and wait for it to finish."""
    page.goto(f"{app_url}/{url_path}")
    wait_idle(page)


# the main area's figures: plotly charts and cell pickers (ui.cell_picker)
FIGURES = "[data-testid='stMain'] .js-plotly-plot, [data-testid='stMain'] .cp"


def cell_pickers(page):
    """The page's cell pickers (ui.cell_picker, in their components' shadow roots), as a Playwright locator."""
    return page.locator("[data-testid='stMain'] .cp:visible")


def click_cell(picker, row: int, col: int) -> None:
    """Click the cell (row, col) of a cell picker (a locator of its .cp element)."""
    picker.scroll_into_view_if_needed()
    picker.locator(".cell").nth(row * picker.evaluate("cp => cp.cols") + col).click()


# the (row, col) a cell picker outlines, or null
# a cell picker's picture is drawn: loaded, with pixels (evaluate on a picker's .cp element)
PICTURE_SHOWN = "cp => { const img = cp.querySelector('img'); return !!img && img.complete && img.naturalWidth > 0; }"
OUTLINED_CELL = """cp => { const i = cp.cells.findIndex(c => c.classList.contains("sel"));
    return i < 0 ? null : [Math.floor(i / cp.cols), i % cp.cols]; }"""
