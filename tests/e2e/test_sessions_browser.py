"""Several users of one server at once (a class on a lecture server): four browser sessions open different
analyses on the built-ins at the same time (Chefer's float64 map and AttnLRP's rules on minilm and digits-vit,
head ablation, an attention-temperature what-if on shapes-vit), each after the others have sent their requests,
so the server computes them together on the shared cached models. Every session must draw exactly what the same
session draws on a server of its own, and none may show an error. (AppTest cannot run sessions in parallel: it
swaps a process-wide Runtime in and out around each run. tests/unit/test_concurrency.py is the fine-grained check:
many more calls from threads, and it fails when a forward runs without the model's lock.)"""

import json
import re

import numpy as np
import pytest

from tests.app.helpers import plotly_array
from tests.e2e.conftest import serve_app, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = {  # a link, then the buttons to press
    "relevance on minilm": ("relevance?model=minilm&input=3&methods=chefer2021,attnlrp,rollout", []),
    "relevance on digits-vit": ("relevance?model=digits-vit&input=5&methods=chefer2021,attnlrp,grad_rollout", []),
    "head importance on digits-vit": ("importance?model=digits-vit&n=16", ["Compute head importance"]),
    "spectral at tau 2 on shapes-vit": ("spectral?model=shapes-vit&tau=2", []),
}
SHOWN = """() => ({
    figures: [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].map(f => JSON.stringify(f.data)),
    text: [...document.querySelectorAll('[data-testid=stMain] [data-testid=stMarkdownContainer]')]
        .map(m => m.innerText),
    errors: [...document.querySelectorAll('[data-testid=stException], [data-testid=stAlertContentError]')]
        .map(e => e.innerText),
})"""


# the figures' data has stayed the same for `quiet` ms (wait_idle waits for every chart's skeleton to go: a page read
# before had some of its figures, not all)
SETTLED = """quiet => {
    const now = JSON.stringify([...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].map(f => f.data));
    const t = performance.now();
    if (now !== window.__figures) { window.__figures = now; window.__figuresSince = t; return false; }
    return t - window.__figuresSince >= quiet;
}"""


def _run_together(browser, url: str, sessions: dict) -> dict:
    """Run `sessions` on the server at `url` step by step: each step is sent to every session before any is
    waited on. Returns what each session shows at the end."""
    pages = {name: browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for name in sessions}
    for name, (link, _) in sessions.items():
        pages[name].goto(f"{url}/{link}")
    for step in range(max(len(buttons) for _, buttons in sessions.values())):
        for name, (_, buttons) in sessions.items():
            if step < len(buttons):
                wait_idle(pages[name])
                pages[name].get_by_role("button", name=buttons[step]).click()
    shown = {}
    for name, page in pages.items():
        wait_idle(page, timeout=300_000)
        page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length > 0")
        page.wait_for_function(SETTLED, arg=1000, polling=200, timeout=120_000)
        shown[name] = page.evaluate(SHOWN)
        page.context.close()
    return shown


def _untimed(texts: list[str]) -> list[str]:
    """The texts but the time estimates ("About 20 s for …", "(about 1 min)"), which depend on the machine's load."""
    return [t for t in texts if not re.search(r"(?i)\babout \d", t)]


ROUNDING = 1e-5  # of an array's largest value: how far a number may move with the order of float32 sums


def _plain(figure):
    """A figure's JSON with its arrays as numpy arrays: typed arrays ({"dtype", "bdata"}, which plotly.js annotates
    with "_inputArray" once it has drawn them) decoded, so the values drawn compare however far plotly.js has got."""
    if isinstance(figure, dict):
        if "bdata" in figure:
            return plotly_array(figure).astype(float)
        return {k: _plain(v) for k, v in figure.items()}
    if isinstance(figure, list):
        if figure and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in figure):
            return np.asarray(figure, dtype=float)
        return [_plain(v) for v in figure]
    return figure


def _differences(a, b, path: str = "") -> list[str]:
    """Where two figures (_plain) differ, as paths with both values: any text or structure, or a number more than
    ROUNDING of its array's scale (a BLAS kernel may split a float32 sum differently from one call to the next;
    tests/unit/test_concurrency.py checks the computations bit for bit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(a.keys() | b.keys()) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape:
        scale = ROUNDING * max(float(np.nanmax(np.abs(b), initial=0.0)), 1e-30)
        off = ~np.isclose(a, b, rtol=0.0, atol=scale, equal_nan=True)
        return [f"{path}[{i}]: {a.flat[i]:.9g} != {b.flat[i]:.9g}" for i in np.flatnonzero(off)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    arrays = isinstance(a, np.ndarray) or isinstance(b, np.ndarray)  # here: of different shapes, or one is not
    return [] if not arrays and a == b else [f"{path}: {a!r} != {b!r}"]


def test_sessions_on_one_server_draw_what_they_draw_alone(browser):
    alone = {}
    for name, session in SESSIONS.items():
        with serve_app() as url:
            alone[name] = _run_together(browser, url, {name: session})[name]
    with serve_app() as url:
        together = _run_together(browser, url, SESSIONS)
    for name in SESSIONS:
        assert not together[name]["errors"] and not alone[name]["errors"], name
        assert together[name]["figures"], name  # nothing drawn would compare equal without testing anything
        differences = _differences(*[[_plain(json.loads(f)) for f in s[name]["figures"]] for s in (together, alone)])
        assert not differences, f"{name}: " + "; ".join(differences[:20])
        assert _untimed(together[name]["text"]) == _untimed(alone[name]["text"]), name
