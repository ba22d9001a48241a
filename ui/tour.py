"""Guided tours: steps through the real views, written as data (one TOML file per tour, see tours/README.md).

A step names a view, says what to look at (and the paper it comes from), sets the state the view opens in
through the same link parameters a copied address carries (ui.params.PARAMS), and names the stored runs its view
shows (`run`: started in the background when the tour starts, ui.tour_runs). A step with a mistake is reported
with its number and field and left out; the rest of the tour runs.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from runs.store import home
from ui.navigation import RUN_OPTIONS, RUN_VIEWS, VIEWS
from ui.params import COMPUTE, PARAMS
from ui.tour_runs import TourRun

TOURS_DIR = Path(__file__).resolve().parent.parent / "tours"  # the tours HeadScope ships
VIEW_NAMES = [v.name for v in VIEWS]  # a step's `view`: the page's name in the URL
SCALARS = (str, int, float, bool)
JUMP = "tour_jump"  # the step list's widget key
FIELDS = ("title", "view", "text", "source", "try", "figure", "run", "state")  # a [[step]]'s fields


@dataclass(frozen=True)
class Step:
    title: str
    view: str  # one of VIEW_NAMES
    text: str  # what to look at and why (markdown)
    source: str = ""  # the paper (or other source) the step comes from
    prompt: str = ""  # "try this": something for the audience to do
    state: dict[str, str] = field(default_factory=dict)  # link parameters (ui.params.PARAMS) -> value
    figure: str = ""  # the heading of the figure the step talks about (the panel scrolls to it on request)
    runs: tuple[str, ...] = ()  # the analyses (RUN_VIEWS) whose stored runs the step's view shows


@dataclass(frozen=True)
class Tour:
    path: Path
    title: str
    summary: str
    steps: list[Step]
    problems: list[str]  # "step 3, field 'view': ..." for every step left out or field ignored


def tour_files() -> list[Path]:
    """The shipped tours, then the user's own ($HEADSCOPE_HOME/tours, default ~/.headscope/tours), by name."""
    return [p for d in (TOURS_DIR, home() / "tours") if d.is_dir() for p in sorted(d.glob("*.toml"))]


def _text(value: object) -> str:
    """A TOML value as link text: lists comma-separated, booleans lower case."""
    if isinstance(value, list):
        return ",".join(map(_text, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _step(n: int, raw: object, problems: list[str]) -> Step | None:
    """One [[step]] table -> Step, or None (with the reason in `problems`) when it cannot be shown."""
    where = f"step {n} of the file"
    if isinstance(raw, dict) and isinstance(raw.get("title"), str) and raw["title"].strip():
        where += f" ({raw['title'].strip()!r})"  # the Tour view numbers the steps it shows, not the file's
    if not isinstance(raw, dict):
        problems.append(f"{where}: not a table of fields; left out.")
        return None
    missing = [f for f in ("title", "view", "text") if not isinstance(raw.get(f), str) or not raw[f].strip()]
    if missing:
        problems.append(f"{where}, field {missing[0]!r}: missing or empty (title, view and text are needed); left out.")
        return None
    if raw["view"] not in VIEW_NAMES:
        views = ", ".join(VIEW_NAMES)
        problems.append(f"{where}, field 'view': {raw['view']!r} is not a view (one of {views}); left out.")
        return None
    for name in sorted(set(raw) - set(FIELDS)):
        problems.append(f"{where}, field {name!r}: not a step field ({', '.join(FIELDS)}); ignored.")
    state = raw.get("state", {})
    if not isinstance(state, dict):
        problems.append(f"{where}, field 'state': must be a table of link parameters; left out.")
        return None
    runs = raw.get("run", [])
    runs = [runs] if isinstance(runs, str) else runs
    shown = [a for a, view in RUN_VIEWS.items() if view == raw["view"]]
    if not isinstance(runs, list) or any(r not in shown for r in runs):
        which = f"one of {', '.join(shown)}" if shown else "none"
        problems.append(
            f"{where}, field 'run': {raw['run']!r} is not a stored run the {raw['view']} view shows ({which}); "
            "left out."
        )
        return None
    if runs and not isinstance(state.get("model"), str):
        problems.append(
            f"{where}, field 'run': the run needs the step's model (state.model, a built-in model); left out."
        )
        return None
    if (
        runs
        and "n" in state
        and not (isinstance(state["n"], int) and not isinstance(state["n"], bool) and state["n"] > 0)
    ):
        problems.append(f"{where}, field 'state.n': the run's inputs must be a whole number above 0; left out.")
        return None
    if COMPUTE.name in state:
        problems.append(
            f"{where}, field 'state.{COMPUTE.name}': a tour names the stored run its step shows instead "
            f"(run = {shown[0] if shown else 'an analysis'!r}, started when the tour starts); ignored."
        )
        state = {k: v for k, v in state.items() if k != COMPUTE.name}
    for name, value in state.items():
        ok = isinstance(value, SCALARS) or (isinstance(value, list) and all(isinstance(v, SCALARS) for v in value))
        if name not in PARAMS or not ok:
            why = "not a link parameter" if name not in PARAMS else "must be a number, text, or a list of them"
            problems.append(f"{where}, field 'state.{name}': {why} (see docs/links.md); left out.")
            return None
    return Step(
        raw["title"].strip(),
        raw["view"],
        raw["text"].strip(),
        str(raw.get("source", "")).strip(),
        str(raw.get("try", "")).strip(),
        {k: _text(v) for k, v in state.items()},
        str(raw.get("figure", "")).strip(),
        tuple(dict.fromkeys(runs)),
    )


def tour_runs(tour: Tour) -> dict[TourRun, list[int]]:
    """The stored runs the tour's steps show, in the order of the first step that shows each -> those steps'
    numbers (1-based, as the panel counts them)."""
    out: dict[TourRun, list[int]] = {}
    for k, step in enumerate(tour.steps, 1):
        s = step.state
        for analysis in step.runs:
            n = int(s["n"]) if "n" in s else None
            options = tuple((name, s[name]) for name in RUN_OPTIONS.get(analysis, ()) if name in s)
            key = TourRun(analysis, s["model"], s.get("dataset", ""), s.get("split", ""), n, options)
            out.setdefault(key, []).append(k)
    return out


def load_tour(path: Path) -> Tour:
    """Read a tour file; a file that is not TOML gives a tour with no steps and the parser's message."""
    problems: list[str] = []
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return Tour(Path(path), Path(path).stem, "", [], [f"the file cannot be read as TOML: {e}"])
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("no [[step]] tables: the tour has no steps.")
        raw_steps = []
    steps = [s for n, raw in enumerate(raw_steps, 1) if (s := _step(n, raw, problems)) is not None]
    raw_title = data.get("title")
    title = raw_title if isinstance(raw_title, str) else Path(path).stem
    return Tour(Path(path), title, str(data.get("summary", "")), steps, problems)


def read_tour(path: Path) -> Tour:
    """load_tour, parsed again only when the file changed (the tour panel reads it on every click)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = -1
    return _load_once(str(path), stamp)


@functools.lru_cache(maxsize=32)
def _load_once(path: str, stamp: int) -> Tour:
    return load_tour(Path(path))


# -- in the app --------------------------------------------------------------------------------------------
def request_step(path: Path, index: int) -> None:
    """Button callback: go to step `index` of the tour in `path` on this run (tour_panel switches the page; a
    page cannot be switched from a callback)."""
    import streamlit as st

    from ui import state

    st.session_state[state.TOUR_GO] = (str(path), index)


def open_step(path: Path, index: int) -> None:
    """Go to step `index` of the tour in `path`: its view, in the state the step sets (st.switch_page)."""
    import streamlit as st

    from ui import links, state
    from ui.navigation import view_path

    tour = read_tour(path)
    index = min(max(index, 0), len(tour.steps) - 1)
    step = tour.steps[index]
    st.session_state[state.TOUR] = (str(path), index)
    st.session_state[state.TOUR_OPENED] = st.session_state.get(state.TOUR_OPENED, 0) + 1
    links.open_link(step.state, switching=True)
    st.switch_page(view_path(step.view), query_params=step.state)


def tour_panel() -> None:
    """The running tour's current step above the view: progress and a step list, text, source, "try this", Back /
    Next (also PageUp / PageDown wherever the focus is, what a presentation clicker sends) and End. A step opens
    scrolled to the top (ui/tour_keys.js)."""
    import streamlit as st

    from ui import state
    from ui.text import literal, prose

    if go := st.session_state.pop(state.TOUR_GO, None):
        open_step(Path(go[0]), go[1])
    at = st.session_state.get(state.TOUR)
    if not at:
        return
    tour = read_tour(Path(at[0]))
    if not tour.steps:
        st.session_state.pop(state.TOUR)
        return
    i = min(at[1], len(tour.steps) - 1)
    step, n = tour.steps[i], len(tour.steps)
    with st.container(border=True, key="tour_panel"):
        where, jump = st.columns([3, 2], vertical_alignment="bottom")
        where.progress((i + 1) / n, text=f"**{literal(tour.title)}** · step {i + 1} of {n}")
        # the step list, wide enough for the steps' titles (a presenter's font too): one widget whose value follows
        # the step (a key per step made a new widget at the same place, which the browser could fill with the
        # previous step's number and so send the tour back a step)
        st.session_state[JUMP] = i
        jump.selectbox(
            "Go to step",
            range(n),
            format_func=lambda k: f"{k + 1}. {tour.steps[k].title}",
            key=JUMP,
            on_change=_jump,
            args=(tour.path, JUMP),
            label_visibility="collapsed",
        )
        text, nav = st.columns([4, 1])
        text.markdown(f"#### {literal(step.title)}\n{prose(step.text)}")
        if step.source:
            text.caption(f"Source: {prose(step.source)}")
        if step.prompt:
            text.info(f"**Try this:** {prose(step.prompt)}", icon=":material/touch_app:")
        with text:
            ready = True  # the step's runs are stored: the figure it names is drawn
            if runs := tour_runs(tour):
                from ui.tour_runs import runs_panel

                ready = runs_panel(str(tour.path), runs, i)
            step_id = f"{at[0]}#{i}#{st.session_state.get(state.TOUR_OPENED, 0)}"
            keys(step_id, step.figure if ready else "", st.session_state[state.PRESENT])
        nav.button(
            "Back",
            key="tour_back",
            help="PageUp",
            disabled=i == 0,
            width="stretch",
            on_click=request_step,
            args=(tour.path, i - 1),
        )
        nav.button(
            "Next",
            key="tour_next",
            help="PageDown",
            type="primary",
            disabled=i == n - 1,
            width="stretch",
            on_click=request_step,
            args=(tour.path, i + 1),
        )
        nav.button("End the tour", key="tour_end", width="stretch", on_click=end_tour)


@functools.cache
def _keys_component():
    """The tour's keys and scrolling in the browser (ui/tour_keys.js), declared once."""
    import streamlit as st

    here = Path(__file__).parent
    return st.components.v2.component(
        "headscope_tour_keys", js=(here / "tour_keys.js").read_text(), css=(here / "tour_keys.css").read_text()
    )


def keys(step: str = "", figure: str = "", present: bool = False) -> None:
    """The tour's keys and scrolling for the open step (its id, the figure it names). The Tour view draws them
    before a tour starts: their script loads a moment after the page, and the first PageDown must find it."""
    _keys_component()(data={"step": step, "figure": figure, "present": present}, key="tour_keys")


def _jump(path: Path, key: str) -> None:
    """Step-list callback: go to the step picked in the select box `key`."""
    import streamlit as st

    request_step(path, st.session_state[key])


def end_tour() -> None:
    """Button callback: stop the running tour (its panel goes) and the background runs it started."""
    import streamlit as st

    from ui import state
    from ui.tour_runs import stop_started

    st.session_state.pop(state.TOUR, None)
    stop_started()
