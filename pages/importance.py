"""Head importance view: ablation and gradient scores of every head side by side, partial pruning of the
selected head, cumulative pruning curves (which score is right), agreement between scores, per class."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import functools

import numpy as np
import pandas as pd
import streamlit as st

from analysis.importance import (
    ABLATIONS,
    GRADIENT,
    ablation_cost,
    agreement,
    available_metrics,
    per_class_frame,
    ranking_agreement,
    scores_frame,
    summarise,
)
from analysis.units.importance import as_scores
from ui import cache, links, state
from ui.context import warn_small_sample
from ui.estimate import estimate_note, interactive_n
from ui.framing import download_button, guided, show_figure, show_head_chart
from ui.importance_figures import (
    ablation_label,
    agreement_figure,
    metric_label,
    partial_pruning_figure,
    per_class_figure,
    pruning_curves_figure,
    score_grid,
    score_meaning,
    signed_note,
)
from ui.links import stop_view
from ui.params import ABLATION, CLASS_SCORE, COMPARE, COMPUTE, ITERATIVE, QUALITY, SCORES, SEED
from ui.pickers import head_picker, sample_size_picker
from ui.sidebar import no_model_message, page_context
from ui.stored import background_panel, input_table, stored_toggle

TOP_INPUTS = 20
TOP_HEADS = 5  # the comparison of two ablation kinds counts the heads both put among their TOP_HEADS most important
PRUNING_INPUTS = 256  # the pruning figures re-run the model ~10 times per score: at most this many of a stored run

chosen = page_context()
st.title("Head importance")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen  # a PageContext from here on, in the functions below too

st.caption(
    "Which heads the model needs: each head is removed in turn (its gate set to 0) over a sample of the "
    "dataset chosen in the sidebar, and scored by how much the accuracy, loss or target probability suffer, next to "
    "the gradient score of Michel et al. (2019). Red cells are heads the model relies on; click one to see what "
    "happens as its gate is turned down, and check with the pruning curves which score ranks heads best."
)

model, spec = ctx.model, ctx.model.spec
ds = ctx.dataset

L, H = spec.n_layers, spec.n_heads


def _options(ablation: str) -> tuple:
    """The importance unit's options for an ablation kind (none for zero: a default run's key and rate)."""
    return () if ablation == "zero" else (("ablation", ablation),)


c1, c2 = st.columns([1, 3])
with c1:
    kind = ABLATION.draw(options=list(ABLATIONS))
    options = _options(kind)
    most = 64 if spec.modality == "image" else 32
    default_n = interactive_n("importance", ctx.model_key, ds.key, options, model, ds, most)
    n = sample_size_picker(len(ds), default_n, key=f"imp_n_{spec.modality}")
# the options drawn once the scores exist: a link sets them now, so they hold when the scores are computed
metric_names = list(available_metrics(model))
score_names = metric_names + list(GRADIENT)
SCORES.bind(options=score_names)
QUALITY.bind(options=metric_names)
ITERATIVE.bind()
SEED.bind()
CLASS_SCORE.bind(options=score_names)
COMPARE.bind(options=["", *(k for k in ABLATIONS if k != kind)])


def _request(what: tuple) -> None:
    """Button callback (a callback survives the router's rerun): remember that this sample was asked for."""
    st.session_state.setdefault("imp_requested", set()).add(what)


asked = (ctx.model_key, ds.key, n, kind)  # the scores this view shows
if links.switch_value(COMPUTE.name):  # a link or a tour step computes them at once: no button to wait for
    _request(asked)
links.live(COMPUTE.name, lambda: "1" if asked in st.session_state.get("imp_requested", set()) else None)

with c2:
    st.caption(
        f"Removing each of the {L * H} heads in turn costs about {ablation_cost(model):.0f} forward passes "
        f"over the {n} inputs instead of {L * H + 1} (what lies before a removed head's output is reused"
        f"{', the last layer runs at the CLS token only' if model.readout_rows else ''}), the gradient score "
        "about 3 more, and the pruning curves about 10 per score. "
        + estimate_note("importance", ctx.model_key, ds.key, options, model, ds, n)
    )
    st.button(
        "Compute head importance",
        type="primary",
        key="imp_compute",
        on_click=_request,
        args=(asked,),
    )
_, stored = stored_toggle(
    ctx,
    "importance",
    "Show the {run}",
    "imp_use_stored",
    help="A precomputed run (python -m headscope precompute, or a background run) of this model on this dataset: "
    "every input's scores, ready to sort. Switch off to compute on the sample above instead.",
    options=options,
)
st.caption(ctx.sample_note(n if stored is None else stored.manifest.n_inputs))
if stored is not None:
    run = cache.stored_run(str(stored.root), stored.manifest.updated)
else:
    going = background_panel(ctx, "importance", "head importance", options)
    if asked not in st.session_state.get("imp_requested", set()):
        st.info(
            "Head importance is being computed in the background (above); the scores show here when it is done."
            if going
            else f"Press **Compute head importance** to score every head on {n} inputs of {ds.name}."
        )
        stop_view()
    run = cache.sample_run("importance", ctx.model_key, ds.key, n, options, model, ds)
res = as_scores(run.arrays(), tuple(run.manifest.params["metrics"]))
if res["labels"] is None and "cosine" in res["metrics"]:  # no label known: the pooled embedding's change first
    res["metrics"] = ("cosine", *(m for m in res["metrics"] if m != "cosine"))
metrics, labels = list(res["metrics"]), res["labels"]
n_scored = len(res["rows"])
scores = summarise(res["scores"])
# the pruning figures run the model again: on the scored inputs, or on the first PRUNING_INPUTS of a large stored
# run's (a run's rows are the dataset's sample of n_scored, and a smaller sample's rows are among them)
n_pruned = n if stored is None else min(n_scored, PRUNING_INPUTS)
scored_inputs = f"the {n_scored} inputs of the {'stored run' if stored is not None else 'sample'}"
pruned_inputs = (
    scored_inputs
    if n_pruned == n_scored
    else f"{n_pruned} of the stored run's {n_scored} inputs (the dataset's seeded stratified sample of {n_pruned})"
)
warn_small_sample(n_scored, labels, spec.n_classes, "these scores")
choices = metrics + list(GRADIENT)
c1, c2 = st.columns([3, 1])
with c1:
    shown = SCORES.draw(options=choices, default=metrics[:2] + ["gradient_norm"])
with c2:
    quality = QUALITY.draw(options=metrics)
if labels is None:
    why = f"{ds.name} has no labels" if not ds.labelled else f"none of {ds.name}'s classes match {spec.name}'s"
    st.info(
        f"{why}, so each input's target is the model's own "
        "(ungated) prediction"
        + (
            ", and the change of the pooled sentence embedding (cosine distance) is the main score."
            if spec.modality == "text"
            else "."
        )
    )


@links.fragment
def head_panel() -> None:
    """The score grids (click a head) and the selected head's partial-pruning curve."""
    if not shown:
        st.warning("Pick at least one score to show.")
        return
    selected = state.selected_head()
    selected = (min(selected[0], L - 1), min(selected[1], H - 1))
    per_row = 2 if H > 8 else 3
    st.caption(
        f"One square per head (rows = layers, columns = heads); click a head to select it. A removed head's output "
        f"becomes **{ablation_label(kind)}**. **Colours:** {signed_note(shown)}."
    )
    for start in range(0, len(shown), per_row):
        cols = st.columns(per_row)
        for col, metric in zip(cols, shown[start : start + per_row]):
            with col:
                values, width = scores[metric], 1300 // per_row
                show_head_chart(
                    functools.partial(score_grid, values, metric, width=width),
                    (metric, width, values.shape, values.tobytes()),
                    selected,
                    f"{score_meaning(metric)}.",
                    scores_frame({metric: values}),
                    f"importance_{metric}",
                    key=f"imp_grid_{metric}",
                )

    st.subheader("Partial pruning of the selected head")
    left, right = st.columns([1, 3])
    with left:
        layer, head = head_picker(L, H, key="imp_head", badge=ctx.head_type)
        st.markdown("\n".join(f"- {metric_label(m)}: **{scores[m][layer, head]:.4g}**" for m in choices))
        st.caption(f"Scores over {scored_inputs}.")
    with right:
        partial = cache.importance_partial(
            ctx.model_key, ds.key, n_pruned, layer, head, tuple(metrics), kind, model, ds
        )
        show_figure(
            partial_pruning_figure(partial, quality, layer, head),
            f"the {metric_label(quality)} of {pruned_inputs} as the gate of layer {layer} head {head} goes "
            "from 1 (intact, left) to 0 (removed, right); a flat line means the head is not needed.",
            partial,
            f"partial_pruning_L{layer}H{head}",
            key="imp_partial",
        )


head_panel()


@links.fragment
def top_inputs() -> None:
    """The inputs where the selected head matters most (every input of a stored run), openable in the sidebar."""
    layer, head = state.selected_head()
    layer, head = min(layer, L - 1), min(head, H - 1)
    values = res["scores"][quality][layer, head]  # [N], signed: positive = removing the head hurts
    tie = res["scores"]["loss"][layer, head] if "loss" in res["scores"] else np.zeros_like(values)
    order = np.lexsort((-tie, -values))[:TOP_INPUTS]  # accuracy ties (0/1 per input) broken by the loss
    rows = np.asarray(res["rows"])[order]
    table = pd.DataFrame(
        {
            "dataset row": rows,
            "input": [ds.names[r] for r in rows],
            "label": [ds.class_names[ds.labels[r]] if ds.labels[r] >= 0 else "" for r in rows],
            metric_label(quality): values[order],
        }
    )
    changed = int((values != 0).sum())
    who = f"layer {layer} head {head}"
    if not changed:
        what = f"Removing {who} changes the {metric_label(quality)} of none of the {n_scored} inputs; they are listed "
        what += "in dataset order."
    else:
        what = f"The {len(order)} of {n_scored} inputs whose {metric_label(quality)} suffers most when {who} is removed"
        what += f" (it changes {changed} of them; the rest are in dataset order)." if changed < len(order) else "."
    st.caption(what + " Select a row to open that input in the sidebar.")
    input_table(table, ds, spec.modality, f"imp_top_{layer}_{head}_{quality}", f"inputs_by_L{layer}H{head}_{quality}")


st.subheader("Inputs where the selected head matters most")
top_inputs()

st.subheader("Do the scores agree, and which one is right?")
left, right = st.columns([2, 3])
with left:
    corr = agreement(scores)
    show_figure(
        agreement_figure(corr),
        "Spearman rank correlation between two scores over all heads: 1 = same "
        "ranking, 0 = unrelated, -1 = reversed. Gradient and ablation scores often disagree.",
        corr.reset_index(names="score"),
        "importance_agreement",
        key="imp_agreement",
    )
with right:
    o1, o2 = st.columns(2)
    iterative = ITERATIVE.draw(o1)
    seed = int(SEED.draw(o2))
    curves = cache.importance_curves(
        ctx.model_key, ds.key, n_pruned, run.manifest.key, tuple(metrics), iterative, seed, kind, scores, model, ds
    )
    show_figure(
        pruning_curves_figure(curves, quality),
        f"heads are removed 10% at a time, least important first by each score (scored on {scored_inputs}); the "
        f"{metric_label(quality)} of {pruned_inputs} is measured after each step. The better score keeps quality "
        "longer (a higher line for accuracy); the dashed line is a random order.",
        curves,
        "pruning_curves",
        key="imp_curves",
    )


@links.fragment
def ablation_comparison() -> None:
    """The head ranking under a second ablation kind, on the view's sample, against the shown kind's."""
    other = COMPARE.draw(options=["", *(k for k in ABLATIONS if k != kind)])
    if not other:
        return
    what = (ctx.model_key, ds.key, n, other)
    if what not in st.session_state.get("imp_requested", set()):
        st.button(
            f"Compute the scores with {ablation_label(other)} on {n} inputs",
            key="imp_compare_compute",
            on_click=_request,
            args=(what,),
        )
        return

    def sample_scores(ablation: str) -> dict[str, np.ndarray]:
        run = cache.sample_run("importance", ctx.model_key, ds.key, n, _options(ablation), model, ds)
        return summarise(as_scores(run.arrays(), tuple(metrics))["scores"])

    table = ranking_agreement(
        scores if stored is None else sample_scores(kind), sample_scores(other), metrics, top=TOP_HEADS
    )
    table["metric"] = table["metric"].map(metric_label)
    table = table.rename(columns={"shared": f"top {TOP_HEADS} shared"})
    how = (
        f"on the sample of {n} inputs, for each ablation metric: the Spearman rank correlation over all {L * H} heads "
        f"between removing to {ablation_label(kind)} and to {ablation_label(other)} (1 = the same ranking), and how "
        f"many of the {TOP_HEADS} most important heads the two share."
    )
    with guided(how, table, f"ablation_agreement_{kind}_{other}", "imp_ablation_agreement"):
        st.dataframe(table, hide_index=True)


st.subheader("Does the ablation kind change the ranking?")
ablation_comparison()

st.subheader("Per class")
if labels is None:
    st.info(
        f"Per-class scores need inputs whose true class the model knows. {ds.name} has no labels: use a folder "
        "with one sub-folder per class, or a table with a label column."
        if not ds.labelled
        else f"Per-class scores need inputs whose true class the model knows; none of {ds.name}'s classes "
        f"({', '.join(ds.class_names[:8])}{' …' if len(ds.class_names) > 8 else ''}) match {spec.name}'s. "
        "The sidebar's label mapping shows the names on both sides."
    )
else:
    classes = per_class_frame(res["scores"], labels, spec.class_names)
    metric = CLASS_SCORE.draw(options=choices)
    show_figure(
        per_class_figure(classes, metric, state.selected_head()),
        "each row is the score computed on the inputs of one class only; a head that is red in one row "
        "and white elsewhere serves that class. The selected head is outlined.",
        classes[classes.metric == metric],
        f"importance_per_class_{metric}",
        key="imp_per_class",
    )

overall = scores_frame(scores)
overall.insert(0, "n", n_scored)
overall.insert(0, "class", "all")
every = (
    overall
    if labels is None
    else pd.concat([overall, per_class_frame(res["scores"], labels, spec.class_names)], ignore_index=True)
)
st.caption(
    f"Every score of every head ({len(every)} rows; class 'all' = {scored_inputs}, "
    f"{int(np.unique(labels[labels >= 0]).size) if labels is not None else 0} classes)."
)
download_button(every, "head_importance_scores", key="imp_download_all")
