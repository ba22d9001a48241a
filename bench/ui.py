"""Interactive speed in a real browser: how long each click takes until the figure has redrawn.

    python bench/ui.py [--models digits-vit,shapes-vit,minilm] [--repeats 5] [--views attention,relevance,...]
                       [--vit-b] [--screenshots DIR]
    python bench/ui.py --floor [--repeats 5]
    python bench/ui.py --deep-link 3

Starts `streamlit run app.py` on a free port and drives Debian's chromium with Playwright. Times:
1. the first page of the fresh server: from the server answering its health check to the Home view ready
   (and whether the raw pages/ file list ever showed in the navigation), and to the sidebar's model picker
   (it follows when the background imports are done); and another fresh server opened on a deep link
   (DEEP_LINK), on the page's own clock from asking for the page: to the first loading status in the main area
   (target < 1 s; of it, the page loading its own scripts until its first message to the server), and to the
   view's first figure (--deep-link N times only this, on N fresh servers);
2. per model: the cold first render of every view (the model chosen in the sidebar, each view opened once
   through the navigation);
3. per view and model, each interaction `--repeats` times warm: the layer/head (by its picker, and by a click on
   a head's cell in the view's head chart), query token, target class,
   colour scale, temperature, block, tab, and the sidebar's next input.

A click is timed on the page's own clock, from the user's input as the browser stamped it (the last pointer or
key event before the page sent the widget's new value; Playwright's own work before it, finding the element
and waiting for it to be still, is reported apart as "harness" and not counted) until "done", detected
precisely, polled every 20 ms, no fixed sleeps: the server has reported the script run (or fragment run) the
click started as finished (its `script_finished` message on the page's websocket), Streamlit's status widget
is gone, no element is marked stale, every chart on the page is drawn and every cell
picker's picture loaded, and the browser has painted two frames
since (plotly redraws a changed chart within them). Each line also splits the median into the server's part
(value sent until the run's finished message arrived) and the browser's (the rest). With --vit-b a
ViT-B/16-sized random model (saved to a temporary folder) is timed too (no target on CPU).
Prints a table (view, model, interaction: median, p95 seconds); last line `slowest warm interaction p95:
X.XX s` (target <= 0.3 s; the input change and the Spectral temperature have their own target of 1 s and are
reported on lines of their own).

--floor times the least a click can cost on this machine instead: bench/floor_app.py (a number input, a line of
text and 0, 1 or 4 small plotly heatmaps that change with it), with the same harness and the same
.streamlit/config.toml; last line `floor p95: text X.XX s, 1 chart X.XX s, 4 charts X.XX s`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import save_vit_b  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, FIGURES, serve_app  # noqa: E402
from ui.navigation import VIEWS  # noqa: E402

NAV = {v.name: v.title for v in VIEWS}  # view -> its navigation link
TITLES = NAV | {"home": "HeadScope"}  # view -> its page heading
TIMEOUT = 120_000
# the interactions with a target of their own (the issue's), reported on their own lines: name -> (what, seconds)
OWN_TARGETS = {"next input": ("input change", 1.0), "temperature": ("temperature step", 1.0)}
DEEP_LINK = "/attention?model=digits-vit&input=7&layer=2&head=1&present=1"  # a lecture's first link
# the first sign of life in the main area: a loading status (app.py's spinners), or the view itself
LOADING = "[data-testid='stMain'] :is([data-testid='stExpander'], [data-testid='stSpinner'], h1)"
# In the page, on its own clock: its first message to the server (its scripts loaded and connected) and the first
# time the selector (LOADING) matches, watched for every change of the page
FIRST_SEEN = """(() => {
  const first = (window.__first = {connected: null, status: null});
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (...args) {
    if (first.connected === null) first.connected = performance.now();
    return send.apply(this, args);
  };
  new MutationObserver(() => {
    if (first.status === null && document.querySelector("%s")) first.status = performance.now();
  }).observe(document, {subtree: true, childList: true});
})();"""
FIRST_RENDER_TIMEOUT = 900_000  # a cold view of a real-size model on CPU (Class embedding's dataset sample on ViT-B)

IDLE = """() => !document.querySelector('[data-testid="stStatusWidget"]')
              && !document.querySelector('[data-stale="true"]')
              && !document.querySelector('[data-testid="stSpinner"]')"""
# every plotly chart laid out, and every cell picker's picture (ui.cell_picker, in a component's shadow root) loaded
ALL_DRAWN = f"""() => ({IDLE})() && [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
                 .every(gd => gd._fullLayout)
                 && [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stBidiComponentIsolated"]')]
                 .every(host => host.shadowRoot  // null while the component mounts: not drawn yet
                        && [...host.shadowRoot.querySelectorAll('.cp img')].every(img => img.complete))"""
TITLE = f"""(title) => ({IDLE})() && [...document.querySelectorAll('[data-testid="stMain"] h1')]
                 .some(h => h.innerText.trim() === title)"""


# In the page: the time of the last user input (a pointer or key event, the browser's own timestamp) before the
# page sent a message to the server after `INPUT_MARK`; that message is the widget's new value.
INPUT_CLOCK = """(() => {
  const hs = (window.__hs = {mark: Infinity, last: null, input: null});
  for (const t of ["pointerdown", "pointerup", "click", "keydown"]) {
    addEventListener(t, (e) => { hs.last = e.timeStamp; }, true);
  }
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (...args) {
    if (hs.input === null && hs.last !== null && hs.last >= hs.mark) hs.input = hs.last;
    return send.apply(this, args);
  };
})();"""
INPUT_MARK = "() => { window.__hs.mark = performance.now(); window.__hs.input = null; }"
# Two painted frames, then the page's clock and the input's time
FRAMES = """() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(
  () => r([performance.now(), window.__hs.input]))))"""


class DeepLink(NamedTuple):
    connected: float  # seconds from asking for the page: the page's scripts loaded, its first message sent
    status: float  # the first loading status in the main area
    figure: float  # the view's first figure


class ScriptRuns:
    """Counts the script runs (full or fragment) the server reports finished over the page's websocket, and
    when the last one went: `sent` (the page's first message after `mark()`: the widget's new value), `done` (its
    script_finished message) and `received` (bytes from the server since the mark). Installs INPUT_CLOCK."""

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.finished, self._msg = 0, ForwardMsg
        self.sent = self.done = None
        self.received = self.messages = 0
        page.add_init_script(INPUT_CLOCK)
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        ws.on("framereceived", self._frame)
        ws.on("framesent", self._sent)

    def mark(self) -> None:
        self.sent = self.done = None
        self.received = self.messages = 0

    def _sent(self, payload) -> None:
        if self.sent is None:
            self.sent = time.perf_counter()

    def _frame(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            self.received += len(payload)
            self.messages += 1
            msg = self._msg()
            msg.ParseFromString(bytes(payload))
            if msg.WhichOneof("type") == "script_finished":
                self.finished += 1
                self.done = time.perf_counter()


def timed(page, action, predicate: str, arg, runs: ScriptRuns | None = None, timeout: float = TIMEOUT) -> float:
    """Seconds from the action until (with `runs`) a script run has finished and predicate(arg) holds in the
    page, both polled every 20 ms, each for at most `timeout` ms."""
    before = runs.finished if runs else 0
    if runs:
        runs.mark()
    t = time.perf_counter()
    action()
    while runs is not None and runs.finished == before:
        if time.perf_counter() - t > timeout / 1000:
            raise TimeoutError("no script run followed the action")
        page.wait_for_timeout(20)
    page.wait_for_function(predicate, arg=arg, polling=20, timeout=timeout)
    return time.perf_counter() - t


class Redraw(NamedTuple):
    """One timed click, in seconds. `total`: from the user's input as the browser stamped it (the last pointer or
    key event before the page sent the new value) until the page is idle, every chart drawn and two frames
    painted, on the page's clock = `server` (the page sending the value until the script run's finished message
    arrives, on this process's clock) + `browser` (the rest: the input reaching the socket, the page drawing).
    `harness`: Playwright's own part before the input (finding the element, waiting for it to be still), not
    counted; `kb` received from the server meanwhile, in `messages` (one per element drawn)."""

    total: float
    server: float
    browser: float
    harness: float
    kb: float
    messages: int


def redraw(page, action, runs: ScriptRuns) -> Redraw:
    """Times one action until its run finished, the page is idle, every chart is drawn and the browser has painted
    two frames since (the charts that changed are redrawn within them)."""
    page.wait_for_function(ALL_DRAWN, polling=20, timeout=TIMEOUT)
    page.evaluate(INPUT_MARK)
    t = time.perf_counter()
    timed(page, action, ALL_DRAWN, None, runs)
    now, user_input = page.evaluate(FRAMES)
    total = (now - user_input) / 1000
    server = runs.done - runs.sent
    return Redraw(total, server, total - server, time.perf_counter() - t - total, runs.received / 1024, runs.messages)


def main_widget(page, testid: str, label: str):
    return page.locator(f'[data-testid="stMain"] [data-testid="{testid}"]').filter(has_text=label).first


def step(page, label: str, where: str = "stMain"):
    """A callable that alternately raises and lowers a number input (so repeats stay in range)."""
    box = page.locator(f'[data-testid="{where}"] [data-testid="stNumberInput"]').filter(has_text=label).first
    state = {"up": True}

    def act():
        box.locator(
            '[data-testid="stNumberInputStepUp"]' if state["up"] else '[data-testid="stNumberInputStepDown"]'
        ).click()
        state["up"] = not state["up"]

    return act


def choose(page, label: str):
    """A callable that picks the next option of a selectbox in the main area (by keyboard, as the list is
    virtualised), wrapping to the first after the last."""
    box = main_widget(page, "stSelectbox", label)

    def act():
        field = box.locator("input")
        field.focus()
        field.press("ArrowDown")  # opens the list at the current option (a click sometimes only focuses the box)
        page.get_by_role("option").first.wait_for()
        options = page.get_by_role("option")
        last = options.nth(options.count() - 1).get_attribute("aria-selected") == "true"
        field.press("Home" if last else "ArrowDown")
        field.press("Enter")

    return act


def radio(page, label: str):
    group = main_widget(page, "stRadio", label)
    state = {"i": 1}

    def act():
        options = group.locator("label:has(input[type=radio])")
        options.nth(state["i"] % options.count()).click()
        state["i"] += 1

    return act


def slide(page, label: str):
    """A callable that moves a slider one step left, then right, by keyboard."""
    thumb = main_widget(page, "stSlider", label).get_by_role("slider")
    state = {"right": False}  # left first: a slider may start at its maximum

    def act():
        thumb.press("ArrowRight" if state["right"] else "ArrowLeft")
        state["right"] = not state["right"]

    return act


def click_head(page):
    """A callable that clicks a head's cell in the view's first head grid (a ui.cell_picker), another head each
    time."""
    state = {"k": 0}

    def act():
        cells = page.locator('[data-testid="stMain"] .cp:visible').first.locator(".cell")
        state["k"] += 5  # 5 cells on: never the head just clicked
        cells.nth(state["k"] % cells.count()).click()

    return act


def tabs(page, names: list[str]):
    """A callable that opens the given tabs in turn (lazy tabs rerun the script)."""
    state = {"i": 0}

    def act():
        page.get_by_role("tab", name=names[state["i"] % len(names)]).click()
        state["i"] += 1

    return act


def interactions(page, view: str) -> dict:
    """{name: action or (set-up, action)} for a view; each action is timed until its run finished and every figure
    is drawn (a set-up, e.g. opening the tab the action needs, runs once before, untimed)."""
    out = {}
    if view == "attention":
        out["head"] = step(page, "Head")
        out["head (chart click)"] = click_head(page)
        out["query token"] = choose(page, "Query token")
        out["tab"] = tabs(page, ["Distance and strength", "Heads of this input"])
    elif view == "relevance":
        out["target class"] = choose(page, "Target class")
        out["colour scale"] = radio(page, "Colour scale")
    elif view == "spectral":
        out["temperature"] = slide(page, "Attention temperature")
        out["tab"] = tabs(page, ["Heads", "Low-pass filter"])
        out["head"] = (tabs(page, ["Heads"]), step(page, "Head"))  # (untimed set-up, the timed action)
        out["head (chart click)"] = click_head(page)
    elif view == "embedding":
        if main_widget(page, "stSlider", "Block").count():  # the class map by block: image models only
            out["block"] = slide(page, "Block")
        out["class"] = choose(page, "Class to track")
    if view != "home":
        out["next input"] = step(page, "Input of", where="stSidebar")
    return out


def pick_model(page, model: str, vit_b_dir: str | None, runs: ScriptRuns) -> float:
    """Choose the model in the sidebar; seconds until the page is ready again."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model").first
    box.click()
    if model == "vit-b":
        page.get_by_role("option", name="Load a model from a folder or hub id…").click()
        page.wait_for_function(IDLE, polling=20, timeout=TIMEOUT)
        field = page.get_by_label("Folder or hub id")
        field.fill(vit_b_dir)
        return timed(page, lambda: field.press("Enter"), IDLE, None, runs)
    return timed(page, lambda: page.get_by_role("option", name=model, exact=True).click(), IDLE, None, runs)


def fresh_deep_link(pw) -> DeepLink:
    """A fresh server opened on DEEP_LINK, timed on the page's clock from the navigation's start (asking for the
    page): the first loading status in the main area (and before it, the page's first message to the server: its
    own scripts loaded and connected), then the view's first figure."""
    with serve_app() as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.add_init_script(FIRST_SEEN % LOADING)
        page.goto(url + DEEP_LINK, wait_until="commit")
        page.locator(LOADING).first.wait_for(timeout=TIMEOUT)
        page.locator(FIGURES).first.wait_for(timeout=FIRST_RENDER_TIMEOUT)
        t_figure = page.evaluate("performance.now()") / 1000
        connected, status = page.evaluate("[window.__first.connected, window.__first.status]")
        browser.close()
    return DeepLink(connected / 1000, status / 1000, t_figure)


def deep_link_line(times: list[DeepLink]) -> str:
    """The last line of the deep-link figure: the best time to the first loading status, the spread, and how
    much of it the page took to load its own scripts and connect."""
    best = min(times, key=lambda t: t.status)
    spread = f" to {max(t.status for t in times):.2f}" if len(times) > 1 else ""
    return (
        f"fresh server on a deep link, first loading status: {best.status:.2f}{spread} s, of which the page's own "
        f"loading {best.connected:.2f} s (target < 1 s)"
    )


def floor(repeats: int) -> None:
    """Time bench/floor_app.py's number input with 0, 1 and 4 charts; print the figures and the last line."""
    from playwright.sync_api import sync_playwright

    p95s = []
    with serve_app("bench/floor_app.py") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for charts in (0, 1, 4):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            runs = ScriptRuns(page)
            page.goto(f"{url}/?charts={charts}")
            page.get_by_text("value 0").wait_for(timeout=TIMEOUT)
            act = step(page, "Head")
            times = [redraw(page, act, runs) for _ in range(repeats + 1)][1:]
            _, p95, line = summary(times)
            print(f"floor: {charts} chart(s) {line}", flush=True)
            p95s.append(p95)
            page.close()
        browser.close()
    print(f"floor p95: text {p95s[0]:.2f} s, 1 chart {p95s[1]:.2f} s, 4 charts {p95s[2]:.2f} s")


def summary(times: list[Redraw]) -> tuple[float, float, str]:
    """(median, p95, a line saying both and how the median splits) of timed clicks."""
    med, p95 = quantiles([r.total for r in times])
    part = {f: statistics.median(getattr(r, f) for r in times) for f in Redraw._fields}
    return (
        med,
        p95,
        f"{med:6.2f} s median, {p95:6.2f} s p95 (median server {part['server']:.2f} + browser "
        f"{part['browser']:.2f} s, {part['kb']:.0f} kB in {part['messages']:.0f} messages; harness "
        f"{part['harness']:.2f} s)",
    )


def quantiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return statistics.median(xs), p95


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="digits-vit,shapes-vit,minilm")
    p.add_argument("--views", default="home,model,attention,importance,relevance,spectral,embedding")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vit-b", action="store_true", help="also a ViT-B/16-sized random model (slow on CPU)")
    p.add_argument("--screenshots", default=None, help="a folder for one screenshot per view and model")
    p.add_argument("--deep-link", type=int, default=0, metavar="N", help="time only N fresh servers on DEEP_LINK")
    p.add_argument("--floor", action="store_true", help="time a minimal Streamlit app instead (bench/floor_app.py)")
    args = p.parse_args()
    if args.floor:
        floor(args.repeats)
        return
    if args.deep_link:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            times = [fresh_deep_link(pw) for _ in range(args.deep_link)]
        for t in times:
            print(f"page connected {t.connected:.2f} s, loading status {t.status:.2f} s, first figure {t.figure:.2f} s")
        print(deep_link_line(times))
        return
    models = args.models.split(",") + (["vit-b"] if args.vit_b else [])
    views = args.views.split(",")

    vit_b_dir = None
    if args.vit_b:
        vit_b_dir = tempfile.mkdtemp(prefix="headscope-vit-b-")
        save_vit_b(vit_b_dir)

    from playwright.sync_api import sync_playwright

    rows = []  # (view, model, interaction, median, p95, warm)
    with sync_playwright() as pw:
        deep = fresh_deep_link(pw)
    rows.append(("attention", "fresh server", "deep link: loading", deep.status, deep.status, False))
    rows.append(("attention", "fresh server", "deep link: figure", deep.figure, deep.figure, False))
    with serve_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        runs = ScriptRuns(page)
        urllib.request.urlopen(url + "/_stcore/health", timeout=5)
        raw_list = []
        t_first = timed(page, lambda: page.goto(url), TITLE, TITLES["home"], runs)
        raw_list.append(page.locator('[data-testid="stSidebarNav"] a').filter(has_text="app").count())
        rows.append(("home", "fresh server", "first page", t_first, t_first, False))
        # Home comes first; the sidebar follows when the background imports (torch, model code) are done
        t = time.perf_counter()
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model").first.wait_for(
            timeout=TIMEOUT
        )
        page.wait_for_function(IDLE, polling=20, timeout=TIMEOUT)
        t_sidebar = t_first + time.perf_counter() - t
        rows.append(("(sidebar)", "fresh server", "model picker ready", t_sidebar, t_sidebar, False))
        for model in models:
            page.get_by_role("link", name="Home", exact=True).click()
            page.wait_for_function(TITLE, arg=TITLES["home"], polling=20, timeout=TIMEOUT)
            if model != "digits-vit":
                t = pick_model(page, model, vit_b_dir, runs)
                rows.append(("(sidebar)", model, "choose model (cold)", t, t, False))
            for view in views:
                link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text=NAV[view]).first
                try:
                    t = timed(page, link.click, TITLE, TITLES[view], runs, FIRST_RENDER_TIMEOUT)
                except Exception as e:  # noqa: BLE001 - report it and go on with the next view
                    print(f"{view:<11} {model:<11} first render could not be timed: {type(e).__name__}", flush=True)
                    continue
                rows.append((view, model, "first render (cold)", t, t, False))
                server = runs.done - runs.sent
                print(f"{view:<11} {model:<11} first render (cold)  {t:6.2f} s (server {server:.2f} s)", flush=True)
                for name, act in interactions(page, view).items():
                    times = []
                    try:
                        if isinstance(act, tuple):
                            redraw(page, act[0], runs)
                            act = act[1]
                        for _ in range(args.repeats + 1):  # the first one warms the caches of this interaction
                            times.append(redraw(page, act, runs))
                    except Exception as e:  # noqa: BLE001 - report it and go on with the next interaction
                        print(
                            f"{view:<11} {model:<11} {name:<20} could not be timed: {type(e).__name__}: "
                            f"{str(e).splitlines()[0][:160]}",
                            flush=True,
                        )
                        page.keyboard.press("Escape")
                        continue
                    med, p95, line = summary(times[1:])
                    rows.append((view, model, name, med, p95, True))
                    print(f"{view:<11} {model:<11} {name:<20} {line}; first {times[0].total:.2f} s", flush=True)
                if args.screenshots:
                    Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(args.screenshots) / f"{model}-{view}.png"), full_page=True)
        browser.close()

    print(f"\n{'view':<11} {'model':<12} {'interaction':<22} {'median':>7} {'p95':>7}")
    for view, model, name, med, p95, _ in rows:
        print(f"{view:<11} {model:<12} {name:<22} {med:7.2f} {p95:7.2f}")
    print(f"raw pages/ list in the navigation of the first page: {'yes' if any(raw_list) else 'no'}")
    print(deep_link_line([deep]))
    targets = [r for r in rows if r[5] and r[1] != "vit-b"]
    for name, (what, target) in OWN_TARGETS.items():
        theirs = [r for r in targets if r[2] == name]
        if theirs:
            worst = max(theirs, key=lambda r: r[4])
            print(f"slowest {what} p95: {worst[4]:.2f} s ({worst[0]}, {worst[1]}; target < {target:g} s)")
    worst = max((r for r in targets if r[2] not in OWN_TARGETS), key=lambda r: r[4])
    print(f"slowest warm interaction p95: {worst[4]:.2f} s ({worst[0]}, {worst[1]}, {worst[2]})")


if __name__ == "__main__":
    main()
