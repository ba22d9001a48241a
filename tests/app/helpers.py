"""Shared AppTest helpers: open a view through app.py on a model, and check it ran cleanly."""

import base64
import contextlib
import re

import numpy as np
from streamlit.testing.v1 import AppTest

from ui.navigation import APP_SCRIPT

TIMEOUT = 300
APP = str(APP_SCRIPT)


def open_view(page: str | None, model: str = "digits-vit", **session) -> AppTest:
    """Run app.py with `session` state preset, pick `model` in the sidebar and switch to `page`
    (e.g. "pages/attention.py"; None stays on Home). The first run resolves the default page, which
    re-keys the sidebar widgets, so the app runs twice before any interaction."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in session.items():
        at.session_state[key] = value
    at.run().run()
    if model != "digits-vit":
        at.sidebar.selectbox[0].select(model).run()
    if page:
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    """No exception and no st.error on the page."""
    assert not at.exception, [str(e.value) for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def figures(at: AppTest) -> int:
    """How many figures the page shows: plotly charts and cell pickers (ui.cell_picker)."""
    return len(at.get("plotly_chart")) + len(at.get("bidi_component"))


def widget(widgets, label: str):
    """The first widget whose label starts with `label`."""
    return next(w for w in widgets if w.label.startswith(label))


@contextlib.contextmanager
def stored_run(model, analysis: str, n: int | None, batch_size: int = 32, **options):
    """A finished run of `analysis` of the built-in digits-vit `model` on the digits test split in the app's
    store (HEADSCOPE_STORE) with these unit options, deleted afterwards."""
    from data import load_dataset
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    run = run_job(
        model, ds, manifest_for(model, "digits-vit", ds, analysis, n, batch_size=batch_size, **options), Store()
    )
    try:
        yield run
    finally:
        Store().delete(run.root.name)


@contextlib.contextmanager
def held_run(model, analysis: str, n: int):
    """A run of `analysis` of digits-vit `model` on n inputs of the digits test split that a thread is writing into
    the app's store, held after its first chunk while the block runs (a run another process computes); it
    finishes on exit. Yields its manifest."""
    import threading

    from data import load_dataset
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    first_chunk, go_on = threading.Event(), threading.Event()

    def progress(done: int, total: int) -> None:
        if 0 < done < total:
            first_chunk.set()
            go_on.wait(120)

    manifest = manifest_for(model, "digits-vit", ds, analysis, n, batch_size=32)
    job = threading.Thread(target=run_job, args=(model, ds, manifest, Store()), kwargs={"progress": progress})
    job.start()
    try:
        assert first_chunk.wait(120)
        yield manifest
    finally:
        go_on.set()
        job.join(120)


def plotly_array(values) -> np.ndarray:
    """A plotly JSON array: a list, or typed-array bytes {"dtype", "bdata"} with its "shape" ("rows, columns"; none
    for a vector)."""
    if isinstance(values, dict):
        flat = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        return flat.reshape([int(n) for n in str(values.get("shape", len(flat))).split(",")])
    return np.asarray(values)


def link_message(at: AppTest) -> str:
    """The text of the one message that lists a link's changes ("" when none shows), as a reader sees it."""
    return " ".join(shown(w.value) for w in at.warning if w.value.startswith("**The link was opened with changes"))


def shown(markdown: str) -> str:
    """What a reader sees of Markdown text whose user-supplied parts were escaped (ui.text.literal: backslashes,
    and invisible word joiners that keep addresses from becoming links)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")
