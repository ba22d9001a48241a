"""Links to a state: what is on screen lives in the URL's query parameters, so a copied address reopens it.

The view is the URL's path (/attention, /spectral, ...; `?view=attention` works too). The sidebar's parameters
are model, dataset, split, input (a dataset input's index), text (a typed text), layer and head (the selected
head) and query (the query token); each view adds its own options (ui.params, PARAMS in the README). A link is read on a
session's first run (and when the tour opens a step): each parameter is applied where its widget is drawn,
checked against that widget's options, and a value that does not exist is replaced by the nearest valid one;
one message then says what was changed. After every run the URL is rewritten from the widgets' values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlencode

import streamlit as st

PENDING = "_link_pending"  # dict[param -> str]: the parameters of the link being opened, not applied yet
NOTES = "_link_notes"  # list[str]: what was changed to open that link
SWITCHING = "_link_switching"  # True from opening a link by switching page until the next run begins
LIVE = "_link_live"  # dict[param -> (session key, format, many)]: the parameters drawn this run, for the URL
SHOW = "_link_show"  # this run's function that shows the link in the sidebar ("Copy link")
ENDED = "_link_ended"  # True once this run's link is written
VIEW = "view"  # ?view=<page>: the view, when the link's path does not name it
PRESENT = "present"  # ?present=1: the presenter layout


def open_link(params: dict[str, str], switching: bool = False) -> None:
    """Start opening a link: its parameters are applied by Param.bind as the widgets are drawn (`switching`: the
    caller goes on with st.switch_page, so this run must not end the link)."""
    st.session_state[PENDING] = {k: str(v) for k, v in params.items() if k not in (VIEW, PRESENT)}
    st.session_state[NOTES] = []
    st.session_state[SWITCHING] = switching


def read_url() -> None:
    """On a session's first run, open the link the browser came with."""
    if PENDING not in st.session_state:
        open_link(st.query_params.to_dict())


def go_to_view() -> None:
    """?view=<name>: switch to that view (the rest of the link stays pending); a name that is no view is noted."""
    from ui.navigation import available_views, view_path

    name = st.query_params.get(VIEW)
    if name is None:
        return
    params = {k: v for k, v in st.query_params.to_dict().items() if k != VIEW}
    try:
        path = view_path(name)
    except KeyError:
        views = ", ".join(v.name for v in available_views())
        note(f"view={name!r} is not a view (one of {views}); opened this one.")
        st.query_params.from_dict(params)
        return
    st.session_state[SWITCHING] = True
    st.switch_page(path, query_params=params)


def begin_run() -> None:
    """Before the sidebar: forget last run's parameters (each widget drawn now registers its own)."""
    st.session_state[LIVE] = {}
    st.session_state[SWITCHING] = st.session_state[ENDED] = False
    st.session_state.pop(SHOW, None)


def show_link_with(show: Callable[[str], None]) -> None:
    """`show(address)` puts this run's link on screen when the run ends (the sidebar's "Copy link")."""
    st.session_state[SHOW] = show


def end_run() -> None:
    """After the view (or just before a view's st.stop: nothing can be drawn after it): the URL, the message and
    the "Copy link" address of this run's state, once per run."""
    if st.session_state.get(ENDED, True) or st.session_state.get(SWITCHING):
        return
    st.session_state[ENDED] = True
    link = finish_run()
    if SHOW in st.session_state:
        st.session_state[SHOW](link)


def stop_view() -> NoReturn:
    """st.stop() for a view: the link to its state is written first (nothing can be drawn after st.stop)."""
    end_run()
    st.stop()


def note(text: str) -> None:
    """Add to the one message shown after a link is opened."""
    st.session_state.setdefault(NOTES, []).append(text)


OPTION_WIDGETS = ("selectbox", "radio", "multiselect", "segmented_control", "select_slider")
RANGE_WIDGETS = ("slider", "number_input")


@dataclass(frozen=True)
class Param:
    """A link parameter, declared once (ui.params): its name in the URL, what it sets (the README's table) and, for a
    widget's parameter, the widget: its session key, kind (the Streamlit function: "selectbox", "slider", "toggle",
    "tabs", ...), label, help, options (a dict: value -> the label shown) or range [lo, hi], how a URL value is read
    (`parse`; `many`: a comma-separated list) and written (`fmt`), and its other fixed arguments (`args`).

    A widget drawn under a scope has the key f"{key}_{scope}" (the scope alone when key is empty). What a run
    decides (options, range, a label that names the dataset) is given to `bind` and `draw`."""

    name: str
    sets: str
    key: str = ""
    kind: str = ""
    label: str = ""
    help: str | None = None
    options: Sequence | Mapping | None = None
    lo: float | None = None
    hi: float | None = None
    parse: Callable[[str], Any] = str
    fmt: Callable[[Any], str] = str
    many: bool = False
    args: Mapping[str, Any] = field(default_factory=dict)

    def values(self) -> list:
        """The option values (a dict's keys); [] for a parameter without options."""
        return list(self.options or ())

    def label_of(self, value: Any) -> str:
        """The label shown for option `value` of a parameter whose options are a dict (value -> label)."""
        if not isinstance(self.options, Mapping):
            raise TypeError(f"The options of {self.name} are not labelled.")
        return self.options[value]

    def key_of(self, scope: object = None) -> str:
        """The widget's session key under `scope`."""
        return self.key if scope is None else f"{self.key}_{scope}" if self.key else str(scope)

    def bind(
        self,
        scope: object = None,
        options: Sequence | Mapping | None = None,
        lo: float | None = None,
        hi: float | None = None,
    ) -> str:
        """The link <-> the widget's state: call it before the widget is drawn (`draw` does), or earlier to hold a
        link's value for a widget drawn later. Returns the widget's key.

        A pending value is parsed, checked (in the options, or clamped to [lo, hi]) and put into the widget's state;
        a value that is not valid is dropped or clamped with a note. The widget's value goes to the URL after the
        run."""
        key = self.key_of(scope)
        options = self.options if options is None else options
        lo = self.lo if lo is None else lo
        hi = self.hi if hi is None else hi
        st.session_state.setdefault(LIVE, {})[self.name] = (key, self.fmt, self.many)
        pending = st.session_state.get(PENDING, {})
        if self.name in pending:
            _apply(self, key, pending.pop(self.name), None if options is None else list(options), lo, hi)
        return key

    def draw(
        self,
        where: Any = st,
        *,
        scope: object = None,
        options: Sequence | Mapping | None = None,
        lo: float | None = None,
        hi: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """`bind`, then draw the widget in `where` (st, st.sidebar, a column); kwargs are the widget's arguments
        that a run decides (value, format_func, on_change, or a label or help of its own). Returns its value."""
        key = self.bind(scope, options, lo, hi)
        options = self.options if options is None else options
        kwargs = {**self.args, **kwargs, "key": key}
        if isinstance(options, Mapping):
            kwargs.setdefault("format_func", options.get)
        widget = getattr(where, self.kind)
        if self.kind == "tabs":
            return widget(list(options or ()), **kwargs)
        kwargs.setdefault("help", self.help)
        label = kwargs.pop("label", self.label)
        if self.kind in OPTION_WIDGETS:
            return widget(label, list(options or ()), **kwargs)
        if self.kind in RANGE_WIDGETS:
            return widget(label, self.lo if lo is None else lo, self.hi if hi is None else hi, **kwargs)
        return widget(label, **kwargs)


def _apply(p: Param, key: str, raw: str, options: list | None, lo: float | None, hi: float | None) -> None:
    """Put the link's value `raw` of parameter p into the widget's state `key` (see Param.bind)."""
    try:
        values = [p.parse(v) for v in raw.split(",") if v != ""] if p.many else [p.parse(raw)]
    except ValueError:
        note(f"{p.name}={raw!r} is not a valid value; kept the default.")
        return
    if options is not None:
        kept = [v for v in values if v in options]
        if len(kept) < len(values) or not kept:
            dropped = ", ".join(str(v) for v in values if v not in options)
            shown = [p.fmt(o) for o in options]
            listed = ", ".join(shown if len(shown) <= 12 else shown[:3] + ["…"] + shown[-2:])
            note(f"{p.name}: {dropped} does not exist here (choose from {listed}).")
        if not kept:
            return
        values = kept
    if lo is not None or hi is not None:
        clamped = [min(max(v, lo if lo is not None else v), hi if hi is not None else v) for v in values]
        if clamped != values:
            note(f"{p.name}={raw} is out of range; opened {', '.join(map(str, clamped))} ({lo} to {hi}).")
        values = clamped
    st.session_state[key] = values if p.many else values[0]


def switch(name: str, sets: str, key: str, label: str, help: str | None = None, **args: Any) -> Param:
    """A yes/no parameter drawn as a toggle: 1 / 0 in the URL (also true / false, yes / no, on / off)."""
    return Param(name, sets, key, "toggle", label, help, [True, False], parse=flag, fmt=flag_text, args=args)


def flag(text: str) -> bool:
    """A yes/no link value: 1, true, yes, on / 0, false, no, off."""
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def flag_text(value: bool) -> str:
    return "1" if value else "0"


def value(name: str) -> str | None:
    """Take a pending parameter that is not a widget's (e.g. layer and head, which set one shared state)."""
    return st.session_state.get(PENDING, {}).pop(name, None)


def peek(name: str) -> str | None:
    """A pending parameter, left pending."""
    return st.session_state.get(PENDING, {}).get(name)


def clamp(name: str, text: str, lo: int, hi: int) -> int | None:
    """An integer parameter clamped to [lo, hi] (with a note when it was changed); None if not a number."""
    try:
        v = int(text)
    except ValueError:
        note(f"{name}={text!r} is not a number; kept the default.")
        return None
    if not lo <= v <= hi:
        note(f"{name}={v} does not exist here ({lo} to {hi}); opened {min(max(v, lo), hi)}.")
    return min(max(v, lo), hi)


def live(name: str, text: str | Callable[[], str | None] | None) -> None:
    """Put a parameter that is not a widget's into this run's URL: its text, or a callable read after the run
    (None: leave it out)."""
    st.session_state.setdefault(LIVE, {})[name] = (None, text, False)


def current() -> dict[str, str]:
    """This run's link parameters: every parameter drawn this run, with its widget's value."""
    out = {}
    for name, (key, fmt, many) in st.session_state.get(LIVE, {}).items():
        if key is None:
            text = fmt() if callable(fmt) else fmt
            if text is not None:
                out[name] = text
            continue
        if key not in st.session_state:
            continue
        v = st.session_state[key]
        out[name] = ",".join(fmt(x) for x in v) if many else fmt(v)
    return out


def sync_url() -> dict[str, str]:
    """Rewrite the URL's query from the parameters drawn (with present=1 in the presenter layout); returns them."""
    from ui import state

    params = current() | ({PRESENT: "1"} if st.session_state.get(state.PRESENT) else {})
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    return params


def fragment(body: Callable) -> Callable:
    """st.fragment that also keeps the URL up to date: a fragment reruns alone, without app.py's finish_run."""

    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        finally:
            sync_url()

    return st.fragment(run)


def finish_run() -> str:
    """Write this run's state into the URL, show one message for what the link could not open, and return the
    full address of this state (for "Copy link")."""
    params = sync_url()
    notes = st.session_state.get(NOTES) or []
    unused = list(st.session_state.get(PENDING) or {})  # open_link keeps view and present out
    if unused:
        notes.append(f"{', '.join(unused)}: not shown on this view as it is now; ignored.")
    if notes:
        st.toast("The link was opened with changes: " + " ".join(notes), icon=":material/link:")
    st.session_state[PENDING], st.session_state[NOTES] = {}, []
    base = str(st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(params)}" if params else base
