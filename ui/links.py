"""Links to a state: what is on screen lives in the URL's query parameters, so a copied address reopens it.

The view is the URL's path (/attention, /spectral, ...; `?view=attention` works too). The sidebar's parameters
are model, dataset, split, input (a dataset input's index), text (a typed text), layer and head (the selected
head) and query (the query token); each view adds its own options (ui.params; docs/links.md). A link is read on a
session's first run (and when the tour opens a step): each parameter is applied where its widget is drawn,
checked against that widget's options, and a value that does not exist is replaced by the nearest valid one;
one message then says what was changed. After every run the URL is rewritten from the widgets' values.
"""

from __future__ import annotations

import functools
import math
import re
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
MESSAGE = "_link_message"  # this run's slot (st.empty) for the one message that lists the link's changes
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
    """Before the sidebar: forget last run's parameters (each widget drawn now registers its own) and open the slot
    of the message that lists a link's changes, at the top of the view: a change shows there as soon as it is
    made, before the view's heavy work."""
    st.session_state[LIVE] = {}
    st.session_state[SWITCHING] = st.session_state[ENDED] = False
    st.session_state.pop(SHOW, None)
    st.session_state[MESSAGE] = st.empty()
    _show_notes()


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
    """Add to the one message that lists what was changed to open a link (plain text: shown literally)."""
    st.session_state.setdefault(NOTES, []).append(text)
    _show_notes()


def _show_notes() -> None:
    """Draw the link's changes so far into this run's message slot: one message, every value shown literally."""
    from ui.text import literal

    notes, slot = st.session_state.get(NOTES), st.session_state.get(MESSAGE)
    if notes and slot is not None:
        slot.warning(
            "**The link was opened with changes:**\n\n" + "\n".join(f"- {literal(n)}" for n in notes),
            icon=":material/link:",
        )


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@dataclass(frozen=True)
class Number:
    """How a link's number is read: ASCII digits only (not ٣, not nan or inf), finite. `step`: the grid the widget
    takes (1: whole numbers; None: any number); a value between grid points opens the nearest one."""

    step: float | None = None

    def __call__(self, text: str) -> float:
        t = text.strip()
        if not _NUMBER.fullmatch(t) or not math.isfinite(v := float(t)):
            raise ValueError(text)
        return int(v) if self.step == 1 and v.is_integer() else v

    def snap(self, v: float) -> float:
        """The grid point nearest `v` (an int on a whole-number grid)."""
        if self.step is None:
            return v
        if self.step == 1:
            return int(round(v))
        return round(round(v / self.step) * self.step, 10)


integer, tenths, number = Number(1), Number(0.1), Number()


OPTION_WIDGETS = ("selectbox", "radio", "multiselect", "segmented_control", "select_slider")
RANGE_WIDGETS = ("slider", "number_input")


@dataclass(frozen=True)
class Param:
    """A link parameter, declared once (ui.params): its name in the URL, what it sets (docs/links.md's table) and, for a
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
    """Put the link's value `raw` of parameter p into the widget's state `key` (see Param.bind): each value parsed
    (a number: finite, ASCII digits), then an option (a slider's nearest one) or clamped to [lo, hi] and snapped to
    the widget's step; what is not valid is dropped, what was moved is noted."""
    try:
        parsed = [p.parse(v) for v in raw.split(",") if v.strip() != ""] if p.many else [p.parse(raw)]
    except ValueError:
        note(f"{p.name}={raw!r} is not a valid value; kept the default.")
        return
    values = [_fit(p, v, options, lo, hi) for v in parsed]
    dropped = [v for v, f in zip(parsed, values, strict=True) if f is None]
    if dropped:
        shown = [p.fmt(o) for o in options or ()]
        listed = ", ".join(shown if len(shown) <= 12 else shown[:3] + ["…"] + shown[-2:])
        note(f"{p.name}={','.join(map(str, dropped))} does not exist here (choose from {listed}); left out.")
    kept = [v for v in values if v is not None]
    if not kept:
        return
    moved = [(v, f) for v, f in zip(parsed, values, strict=True) if f is not None and f != v]
    if moved:
        where = f" ({lo} to {hi})" if options is None else " (the nearest value on the slider)"
        note(f"{p.name}={raw} is out of range; opened {', '.join(p.fmt(f) for _, f in moved)}{where}.")
    st.session_state[key] = kept if p.many else kept[0]


def _fit(p: Param, v: Any, options: list | None, lo: float | None, hi: float | None) -> Any:
    """The valid value nearest `v` for p's widget: the option equal to it (a slider's nearest), or `v` clamped to
    [lo, hi] and snapped to the widget's step; None when p's options hold nothing like it."""
    if options is not None:
        equal = [o for o in options if o == v and isinstance(o, bool) == isinstance(v, bool)]  # 1 is not True
        if equal:
            return equal[0]
        numeric = [o for o in options if isinstance(o, int | float)]
        if p.kind == "select_slider" and isinstance(v, int | float) and numeric:
            return min(numeric, key=lambda o: abs(o - v))
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):
        v = min(max(v, lo if lo is not None else v), hi if hi is not None else v)
        return p.parse.snap(v) if isinstance(p.parse, Number) else v
    return v


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


def switch_value(name: str) -> bool | None:
    """Take a pending yes/no parameter that is not a widget's (1 / 0, as a toggle's); None when the link has none,
    or a value that is not yes/no (with a note)."""
    text = value(name)
    if text is None:
        return None
    try:
        return flag(text)
    except ValueError:
        note(f"{name}={text!r} is not a valid value; kept the default.")
        return None


def peek(name: str) -> str | None:
    """A pending parameter, left pending."""
    return st.session_state.get(PENDING, {}).get(name)


def clamp(name: str, text: str, lo: int, hi: int) -> int | None:
    """An integer parameter, the whole number in [lo, hi] nearest it (with a note when it was changed); None if not
    a number."""
    try:
        v = integer(text)
    except ValueError:
        note(f"{name}={text!r} is not a number; kept the default.")
        return None
    fitted = int(integer.snap(min(max(v, lo), hi)))
    if fitted != v:
        note(f"{name}={text} does not exist here ({lo} to {hi}); opened {fitted}.")
    return fitted


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
    """Write this run's state into the URL, add what the link set that no widget took to its message, and return
    the full address of this state (for "Copy link")."""
    params = sync_url()
    unused = list(st.session_state.get(PENDING) or {})  # open_link keeps view and present out
    if unused:
        note(f"{', '.join(unused)}: not shown on this view as it is now; ignored.")
    st.session_state[PENDING], st.session_state[NOTES] = {}, []
    base = str(st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(params)}" if params else base
