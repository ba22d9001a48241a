"""Relevance view: which patches or words drove the prediction, by several methods side by side, with
AttnLRP's conservation check and faithfulness scores over a dataset sample."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from analysis.attribution import RelevanceError
from analysis.conservation import SPLIT_PARTS
from analysis.faithfulness import method_label
from analysis.relevance import METHODS, READ_AT, available_methods, to_grid
from analysis.units.relevance import as_maps
from ui import cache, links
from ui.context import images_of, tokens_of
from ui.faithfulness_panel import faithfulness_section
from ui.framing import show_figure, show_pictures
from ui.links import stop_view
from ui.params import OPACITY, PREDICTED, RELEVANCE_METHODS, RELEVANCE_READ_AT, SCALE, TARGET, UNDER
from ui.relevance_figures import (
    CONSERVATION_CLASSES,
    colour_limits,
    conservation_figure,
    gallery_figure,
    map_picture,
    shares,
    token_pictures,
    top_tokens,
)
from ui.sidebar import no_model_message, page_context
from ui.stored import background_panel, find_run, input_table, run_label

METHODS_KEY = "relevance_methods"
DEFAULT_METHODS = ["rollout", "grad_rollout", "chefer2021", "attnlrp"]

chosen = page_context()
st.title("Relevance")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen  # a PageContext from here on, in the functions below too

m = ctx.model
spec = m.spec
image = spec.grid is not None
unit, units = ("patch", "patches") if image else ("word piece", "word pieces")
st.caption(
    f"Each method assigns every input {unit} a relevance for one class: red {units} speak for the class, "
    f"blue ones against it, and the methods often disagree. The faithfulness scores below check which "
    "maps are right: removing the tokens a faithful map calls relevant should hurt the prediction most."
)


# -- choices: methods, target class, colour scale -------------------------------------------------------
LONG_TEXT = 64  # word pieces above which text maps get the compact view (top tokens + a scrolling panel)
TOP_TOKENS = 15
LONG_TEXT_PANEL = 600  # pixels
DEFAULT_READ_AT = next(iter(READ_AT))
TEXT_POSITION = "position + token-type embeddings"  # the split's "position" part of a text model
ALL_CLASSES = 16  # up to this many classes, the first class chosen computes every class's map (class_map)
usable = available_methods(m)
wanted = st.session_state.get(METHODS_KEY, DEFAULT_METHODS)
for name in wanted:
    if name not in METHODS:
        st.warning(f"Unknown relevance method {name!r}: pick from the list.")
    elif name not in usable:
        st.warning(f"{method_label(name)} is left out: it does not apply to {spec.name}: {METHODS[name].why_not(m)}")
probs = ctx.trace().probs[0]
pred = int(probs.argmax())
names = spec.class_names


def class_map(method: str, target: int | None, read_at: str) -> np.ndarray:
    """The method's map [T'] of the current input for the target class (None: the predicted one). A model of up to
    ALL_CLASSES classes gets every class's map in one batched pass when a class is first chosen, so going through
    the classes after that computes nothing (the predicted class, as the view opens, costs one class only). A
    class-agnostic method's one map serves every class."""
    if target is None or not METHODS[method].class_specific:
        return cache.relevance_maps(ctx.model_key, ctx.input_key, method, None, read_at, m, ctx.batch)[0]
    classes = tuple(range(spec.n_classes)) if spec.n_classes <= ALL_CLASSES else (target,)
    return cache.relevance_maps(ctx.model_key, ctx.input_key, method, classes, read_at, m, ctx.batch)[
        classes.index(target)
    ]


@dataclass(frozen=True)
class MapOptions:
    """What the maps panel's widgets chose: the methods, the target class (None: the predicted one), one colour scale
    for all maps or not, where AttnLRP reads text relevance, and (images) the maps' opacity and the image under them."""

    methods: list[str]
    target: int | None
    shared: bool
    read_at: str = DEFAULT_READ_AT
    opacity: float | None = None
    under: bool | None = None


def map_options() -> MapOptions:
    """The maps panel's widgets: methods, target class and colour scale; opacity and image (images) or where AttnLRP
    reads relevance (text)."""
    c1, c2, c3 = st.columns([3, 2, 1])
    picked = RELEVANCE_METHODS.draw(
        c1,
        scope=ctx.model_key,
        options=usable,
        default=[n for n in wanted if n in usable],
        help="Only the methods that apply to this model are listed. "
        + " · ".join(f"{METHODS[n].label}: {METHODS[n].description}" for n in usable),
    )
    st.session_state[METHODS_KEY] = picked + [n for n in wanted if n in METHODS and n not in usable]

    choice = TARGET.draw(
        c2,
        scope=ctx.model_key,
        options=[PREDICTED] + list(range(spec.n_classes)),
        format_func=lambda c: (
            "the predicted class" if c == PREDICTED else f"{c}: {names[c]}"
        ),  # labels that do not change with the input, so the choice stays valid when the input changes
    )
    shared = SCALE.draw(c3) == "shared"
    target = None if choice == PREDICTED else int(choice)  # None: whichever class the model predicts
    if image:
        o1, o2 = st.columns([3, 1])
        return MapOptions(picked, target, shared, opacity=OPACITY.draw(o1), under=UNDER.draw(o2))
    return MapOptions(picked, target, shared, read_at=RELEVANCE_READ_AT.draw())


def show_maps(o: MapOptions, tgt: int) -> None:
    """The chosen methods' maps for class tgt side by side (a method that fails says why), and what each does."""
    maps = {}
    for name in o.methods:
        with st.spinner(f"Computing {method_label(name)}…"):
            try:
                at = o.read_at if METHODS[name].reads_text_at else DEFAULT_READ_AT  # the others: one cache entry
                maps[name] = class_map(name, o.target, at)
            except RelevanceError as e:
                st.error(str(e))
    if not maps:
        return
    s = {method_label(k): v for k, v in shares(maps).items()}
    lims = colour_limits(s, o.shared)
    st.subheader(f"Maps for class {names[tgt]} ({'predicted, ' if tgt == pred else ''}probability {probs[tgt]:.0%})")
    how = (
        f"each map shows every {unit}'s share of the method's total |relevance| (red: for the class, blue: "
        "against); "
        + (
            "one colour scale for all maps, so strong and diffuse maps can be compared."
            if o.shared
            else "each map on its own scale, to see its pattern."
        )
    )
    data = {k: v for k, v in maps.items()}
    name = f"relevance_{ctx.input_key.replace('/', '_')}_class{tgt}"
    if image:
        assert o.opacity is not None and o.under is not None  # map_options draws both for an image model
        pictures = [
            map_picture(images_of(ctx.batch)[0], to_grid(m, v[None])[0], lims[k], k, o.opacity, o.under)
            for k, v in s.items()
        ]
        data["grid"] = np.asarray(spec.grid)
        show_pictures(pictures, how, data, name, key="rel_maps")
    else:
        show_text_maps(s, lims, how, data, name)
    about_methods(o.methods)


def show_text_maps(s: dict[str, np.ndarray], lims, how: str, data: dict[str, np.ndarray], name: str) -> None:
    """Text maps s ({method label: shares [T']}) one per row; a long text gets each method's most relevant tokens
    first and the maps in a scrolling panel."""
    tokens = tokens_of(ctx.batch)[0][spec.n_prefix :]
    data["tokens"] = np.asarray(tokens)
    for note in ctx.notes:  # e.g. the text was truncated to the model's limit
        st.warning(note)
    long_text = len(tokens) > LONG_TEXT
    if long_text:
        st.info(
            f"{len(tokens)} word pieces: below, the {TOP_TOKENS} most relevant of each method; the full "
            "maps are in the scrolling panel under it."
        )
        st.dataframe(top_tokens(tokens, s, TOP_TOKENS), hide_index=True, width="stretch")
    with st.container(height=LONG_TEXT_PANEL) if long_text else st.container():
        show_pictures(token_pictures(tokens, s, lims), how, data, name, key="rel_maps", per_row=1)


def about_methods(picked: list[str]) -> None:
    """An expander with a table of the picked methods: name, what each does, its reference."""
    with st.expander("About the methods"):
        st.table(
            pd.DataFrame(
                [
                    {
                        "method": n,
                        "name": METHODS[n].label,
                        "what it does": METHODS[n].description,
                        "reference": METHODS[n].citation,
                    }
                    for n in picked
                ]
            ).set_index("method")
        )


def conservation(read_at: str, tgt: int) -> None:
    """AttnLRP's relevance summed over the input against each class's logit, and where class tgt's logit goes."""
    st.subheader("Conservation: AttnLRP relevance vs the logit")
    if "attnlrp" not in usable:
        st.info(f"AttnLRP does not apply to {spec.name}: {METHODS['attnlrp'].why_not(m)}")
        return
    # one LRP pass per class: a model of many classes (ImageNet's 1000) shows its highest logits and the target,
    # a target beyond them in a pass of its own (the highest logits' pass is kept)
    top = tuple(sorted(np.argsort(-probs)[:CONSERVATION_CLASSES].tolist()))
    cons = cache.relevance_conservation(ctx.model_key, ctx.input_key, read_at, top, m, ctx.batch)
    if tgt not in top:
        extra = cache.relevance_conservation(ctx.model_key, ctx.input_key, read_at, (tgt,), m, ctx.batch)
        cons = pd.concat([cons, extra], ignore_index=True)
    row = cons[cons["class"] == tgt].iloc[0]
    gap = abs(row.total_relevance - row.logit)
    st.markdown(
        f"Class **{names[tgt]}**: total relevance **{row.total_relevance:.3g}** for a logit of "
        f"**{row.logit:.3g}** (gap {gap:.3g}, {gap / max(abs(row.logit), 1e-9):.0%} of the logit)."
    )
    left, right = st.columns([4, 3])
    with left:
        conservation_chart(cons, read_at, len(top))
    with right:
        logit_parts(cons, row, tgt)


def conservation_chart(cons: pd.DataFrame, read_at: str, n_top: int) -> None:
    """One point per class of cons (its logit, its summed AttnLRP relevance) around the diagonal of conservation."""
    classes = tuple(int(c) for c in cons["class"])
    where = (
        "the bias terms, the position embeddings and the CLS token absorb part of it, and the softmax rule "
        "is not exactly conservative: the table beside says how much each takes"
    )
    show_figure(  # the maps' options and the target leave it as it is
        cache.memo(
            "rel_conservation",
            (ctx.model_key, ctx.input_key, read_at, classes, pred),
            lambda: conservation_figure(cons, pred),
        ),
        (
            "one point per class"
            if len(classes) == spec.n_classes
            else f"one point for each of the {n_top} classes with the highest logits (and the target)"
        )
        + ": x is the class logit, y the AttnLRP relevance summed over the input; points "
        f"on the dashed diagonal conserve relevance exactly ({where}). The predicted class is red; the "
        "target's numbers are in the line above, and hover names every point.",
        cons,
        "relevance_conservation",
        key="rel_conservation",
    )


def logit_parts(cons: pd.DataFrame, row: pd.Series, tgt: int) -> None:
    """A table of where class tgt's logit goes (row: its line of cons): the maps, the biases, the embeddings..."""
    parts = {
        (TEXT_POSITION if k == "position" and not image else label): float(
            row[k] if k != "maps" else row.total_relevance
        )
        for k, label in SPLIT_PARTS.items()
        if k in cons.columns or k == "maps"
    }
    st.markdown(f"**Where the logit of class {names[tgt]} ({row.logit:.3g}) goes**")
    st.dataframe(
        pd.DataFrame(
            {
                "part": list(parts),
                "relevance": list(parts.values()),
                "share": [v / row.logit if row.logit else np.nan for v in parts.values()],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "part": st.column_config.TextColumn(width="medium"),
            "relevance": st.column_config.NumberColumn(format="%.3g", width="small"),
            "share": st.column_config.NumberColumn(format="percent", width="small"),
        },
    )
    st.caption(f"The parts add up to the logit exactly; only '{SPLIT_PARTS['maps']}' reaches the maps above.")


@links.fragment
def maps_panel() -> None:
    """The chosen methods' maps for the target class and AttnLRP's conservation (a change of method, target
    or colour scale reruns only this panel)."""
    o = map_options()
    tgt = pred if o.target is None else o.target
    if not o.methods:
        st.info("Pick at least one method to see its map.")
    else:
        show_maps(o, tgt)
    conservation(o.read_at, tgt)


maps_panel()

# -- stored maps over the whole dataset ----------------------------------------------------------------------
STORED_TOP = 20


@links.fragment
def stored_panel() -> None:
    """The inputs of a stored relevance run where the methods disagree most, openable in the sidebar."""
    ds = ctx.dataset
    st.subheader("Over the whole dataset: where the methods disagree most")
    stored = find_run(ctx, "relevance")
    if stored is None:
        st.caption(
            f"No stored relevance run of {spec.name} on {ds.name} yet: start one here (rollout, gradient "
            "rollout and AttnLRP for every input), or with `python -m headscope precompute --analyses "
            "relevance`."
        )
        background_panel(ctx, "relevance", "rollout, gradient rollout and AttnLRP")
        return
    rel = as_maps(cache.stored_run(str(stored.root), stored.manifest.updated).arrays())
    order = np.argsort(-rel["disagreement"], kind="stable")[:STORED_TOP]
    rows = rel["rows"][order]
    names = list(rel["maps"])
    table = pd.DataFrame(
        {
            "dataset row": rows,
            "input": [ds.names[r] for r in rows],
            "label": [spec.class_names[c] if c >= 0 else "" for c in rel["labels"][order]],
            "predicted": [spec.class_names[c] for c in rel["predicted"][order]],
            "disagreement": rel["disagreement"][order],
        }
    )
    st.caption(
        f"The {run_label(stored)}; methods {', '.join(method_label(k) for k in names)}. Disagreement = mean "
        "1 − Spearman correlation between the methods' maps. Select a row to open that input."
    )
    if image:
        top = order[:4]
        show_figure(
            gallery_figure(
                images_of(m.prepare([ds.inputs[r] for r in rel["rows"][top]])),
                {method_label(k): to_grid(m, rel["maps"][k][top]) for k in names},
                [f"{ds.names[r]} · {d:.2f}" for r, d in zip(rel["rows"][top], rel["disagreement"][top])],
            ),
            "rows: the inputs of the whole stored run where the methods agree least; each map on its own scale.",
            None,
            "relevance_stored_disagreement",
            key="rel_stored_gallery",
        )
    input_table(table, ds, spec.modality, "rel_stored_table", "relevance_stored_disagreement")


stored_panel()


faithfulness_section(ctx)
