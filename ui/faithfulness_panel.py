"""The Relevance view's faithfulness section: the scores of a stored faithfulness run, or of a sample scored on
request (analysis.units.faithfulness, the same computation), their table and curves, the insertion start's own
score, and the inputs where the methods disagree most."""

import numpy as np
import pandas as pd
import streamlit as st

from analysis.faithfulness import (
    INSERTION_STARTS,
    METRICS,
    RANDOM,
    best_methods,
    insertion_floor,
    insertion_starts,
    method_label,
)
from analysis.relevance import available_methods, to_grid
from analysis.units.faithfulness import as_report
from ui import cache
from ui.context import PageContext, images_of, tokens_of
from ui.estimate import estimate_note, interactive_n
from ui.framing import download_button, show_figure
from ui.params import START
from ui.pickers import sample_size_picker
from ui.relevance_figures import curves_figure, gallery_figure, highlight_best
from ui.stored import background_panel, run_label, stored_toggle

SCORED_KEY = "relevance_scored"
FAST_TO_SCORE = ["rollout", "grad_rollout", "attnlrp"]  # one forward (+ one backward) each
SATURATED_START = 0.6  # mean probability on the insertion start above which the view calls insertion saturated

CURVE_PANELS = [
    (
        ("positive", "negative"),
        "top-1 accuracy",
        "fraction of tokens removed",
        "solid: most relevant removed first (a faithful map drops fast); dashed: least relevant first "
        "(a faithful map stays high). Grey: random map.",
        "relevance_perturbation",
        "rel_perturbation",
    ),
    (
        ("deletion", "insertion"),
        "probability of the predicted class",
        "fraction of tokens",
        "solid: deletion (a faithful map drops fast); dashed: insertion into a blurred or empty input "
        "(a faithful map rises fast). Grey: random map.",
        "relevance_deletion_insertion",
        "rel_deletion",
    ),
]


def show_scores(ctx: PageContext, table: pd.DataFrame, curves: pd.DataFrame, what: str, note: str, start: str) -> None:
    """The faithfulness table (best per column highlighted), the insertion start's own score, and the
    perturbation and deletion/insertion curves; start: the INSERTION_STARTS name the insertion began from."""
    ds, spec = ctx.dataset, ctx.model.spec
    image = spec.grid is not None
    st.markdown(
        f"**Scores over {what}** (in green: the best of each column, where it beats the random map, i.e. chance)"
    )
    st.caption(
        note
        + (
            ""
            if ds.masks is not None or not image
            else " No object masks, so no pointing game or mIoU: give an image folder a masks/ "
            "folder of same-named mask images to get them."
        )
    )
    st.dataframe(highlight_best(table), hide_index=True, width="stretch")
    no_winner = [METRICS[m][0] for m, best in best_methods(table).items() if best is None]
    if no_winner:
        st.warning(
            f"No method beats the random map on {', '.join(no_winner)}: on these inputs those scores do not tell "
            "the methods apart from chance."
        )
    st.caption(
        "Perturbation AUC (Chefer): top-1 accuracy as 0–90% of the tokens are removed, most relevant first "
        "(positive, lower is better) or least relevant first (negative, higher is better). Deletion / "
        "insertion (RISE): probability of the predicted class as the most relevant tokens are removed, or "
        f"revealed into {INSERTION_STARTS[start][spec.modality]}. "
        + (
            "Pointing game: the map's maximum falls on the object; mIoU: the map thresholded at its mean vs "
            "the object mask."
            if ds.masks is not None
            else ""
        )
    )
    floor = insertion_floor(curves)
    (st.warning if floor > SATURATED_START else st.caption)(
        f"Insertion baseline: starting from {INSERTION_STARTS[start][spec.modality]}, before any token is "
        f"revealed, the model already gives the predicted class p = {floor:.2f} on average, so every insertion "
        f"AUC lies between about {floor:.2f} and 1"
        + (
            ": the test is saturated, and a random map can tie the best one. Pick another start in 'Insertion "
            "starts from' above and score again."
            if floor > SATURATED_START
            else "; compare the methods to the random map, not to 0."
        )
    )
    download_button(table, "relevance_faithfulness", key="dl_rel_table")
    for column, (tests, y_title, x_title, how, name, key) in zip(st.columns(2), CURVE_PANELS):
        part = curves[curves["test"].isin(tests)]
        with column:
            show_figure(curves_figure(part, list(tests), y_title, x_title), how, part, name, key=key)


def request_scores(model_key: str, data_key: str, n_key: str, methods_key: str, start_key: str, available: int) -> None:
    """Form callback: remember what to score (the scores persist across reruns until the next request)."""
    scored = st.session_state.get(methods_key) or []
    if not scored:
        st.session_state["rel_nothing_to_score"] = True
        return
    n = min(int(st.session_state[n_key]), available)
    st.session_state[SCORED_KEY] = (model_key, data_key, n, tuple(scored), st.session_state[start_key])


def scored_options(methods: tuple[str, ...], start: str) -> tuple:
    """The faithfulness unit's options of a sample the panel scores (the maps kept for the disagreement table):
    one tuple for the run and for its time estimate, so the estimate reads the run's measured rate."""
    return (("methods", methods), ("insertion_start", start), ("maps", True))


def faithfulness_section(ctx: PageContext) -> None:
    """The faithfulness scores of a stored faithfulness run of the sidebar's model and dataset, or of a sample
    scored on request (the methods, sample size and insertion start in a form), and the inputs where the
    methods disagree most."""
    st.subheader("Faithfulness over a dataset sample")
    m, ds = ctx.model, ctx.dataset
    spec = m.spec
    image = spec.grid is not None
    usable = available_methods(m)
    _, stored_faith = stored_toggle(
        ctx,
        "faithfulness",
        "Show the {run}",
        "rel_use_stored_faithfulness",
        help="A precomputed faithfulness run (python -m headscope precompute --analyses faithfulness) of this "
        "model on this dataset. Switch off to score a sample here.",
    )
    if stored_faith is not None:
        tables = cache.stored_run(str(stored_faith.root), stored_faith.manifest.updated).tables()
        show_scores(
            ctx,
            tables["scores"],
            tables["curves"],
            run_label(stored_faith).removeprefix("stored run: "),
            f"Methods {', '.join(method_label(x) for x in stored_faith.manifest.params['methods'])}, maps for the "
            "predicted class.",
            stored_faith.manifest.params.get("insertion_start", insertion_starts(spec.modality)[0]),
        )
        return

    # the settings last applied (a form's widgets change on submit): what the estimate and the default size use
    n_key, methods_key, start_key = f"rel_n_{spec.modality}", f"rel_scored_{ctx.model_key}", START.key_of(spec.modality)
    applied = scored_options(
        tuple(st.session_state.get(methods_key) or [x for x in FAST_TO_SCORE if x in usable]),
        st.session_state.get(start_key, insertion_starts(spec.modality)[0]),
    )
    default_n = interactive_n("faithfulness", ctx.model_key, ds.key, applied, m, ds, 32 if image else 12)
    with st.form("rel_faithfulness"):
        f1, f2, f3 = st.columns([1, 2.6, 1.8])
        with f1:
            sample_size_picker(len(ds), default_n, key=n_key)
        START.draw(
            f3,
            scope=spec.modality,
            options=insertion_starts(spec.modality),
            format_func=lambda k: INSERTION_STARTS[k][spec.modality],
        )
        f2.multiselect(
            "Methods to score (a seeded random map is added as chance)",
            usable,
            default=[x for x in FAST_TO_SCORE if x in usable],
            format_func=method_label,
            key=methods_key,
        )
        st.form_submit_button(
            "Score faithfulness",
            type="primary",
            on_click=request_scores,
            args=(ctx.model_key, ds.key, n_key, methods_key, start_key, len(ds)),
        )
    st.caption(
        f"Inputs of {ds.name}, maps for the predicted class. Removing a token replaces it by the "
        "baseline (" + ("the normalisation's mean colour over its patch" if image else "a zero embedding") + "). "
        "Slow methods (integrated gradients, occlusion, SmoothGrad, GradientSHAP) take longest. "
        + estimate_note(
            "faithfulness",
            ctx.model_key,
            ds.key,
            applied,
            m,
            ds,
            min(int(st.session_state.get(n_key, default_n)), len(ds)),
            " with the methods last applied",
        )
    )
    background_panel(ctx, "faithfulness", "faithfulness scoring")
    if st.session_state.pop("rel_nothing_to_score", False):
        st.error("Pick at least one method to score.")
    request = st.session_state.get(SCORED_KEY)
    if request is None or request[:2] != (ctx.model_key, ds.key):
        st.info("Choose a sample size and the methods, then press 'Score faithfulness'.")
        return
    _, _, n, scored, start = request
    run = cache.sample_run("faithfulness", ctx.model_key, ds.key, n, scored_options(scored, start), m, ds)
    report = as_report(run.arrays(), run.tables(), scored)

    ctx.warn_if_small(n, "these scores")
    show_scores(ctx, report.table, report.curves, f"{n} inputs of {ds.name}", ctx.sample_note(n), start)

    st.markdown("**Where the methods disagree most**")
    methods = [k for k in report.maps if k != RANDOM]
    if len(methods) < 2:
        st.info("Score at least two methods to see where they disagree.")
        return
    dis = report.disagreement()
    top = np.argsort(-dis)[:4]
    rows, labels = report.indices[top], run.arrays()["label"][top]
    captions = [
        f"{ds.names[r]} · {spec.class_names[c] if c >= 0 else 'no label'} · {d:.2f}"
        for r, c, d in zip(rows, labels, dis[top])
    ]
    if image:
        images = images_of(m.prepare([ds.inputs[i] for i in rows]))
        grids = {method_label(k): to_grid(m, report.maps[k][top]) for k in methods}
        show_figure(
            gallery_figure(images, grids, captions),
            "rows: the inputs where the methods' rankings of patches agree least (label and "
            "disagreement = mean 1 − Spearman correlation between methods); each map on its own scale.",
            {k: report.maps[k][top] for k in methods} | {"input": np.asarray(ds.names)[rows], "disagreement": dis[top]},
            "relevance_disagreement",
            key="rel_gallery",
        )
    else:
        tokens = tokens_of(m.prepare([ds.inputs[i] for i in rows]))
        table = pd.DataFrame(
            {"input": captions, "text": [ds.inputs[i] for i in rows]}
            | {
                method_label(k): [
                    toks[spec.n_prefix + int(np.argmax(report.maps[k][j][: len(toks) - spec.n_prefix]))]
                    for j, toks in enumerate(tokens)
                ]
                for k in methods
            }
        )
        st.caption(
            "**How to read this:** the texts where the methods' rankings of word pieces agree least "
            "(disagreement = mean 1 − Spearman correlation); each method column shows its most relevant piece."
        )
        st.dataframe(table, hide_index=True, width="stretch")
        download_button(table, "relevance_disagreement", key="dl_rel_gallery")
