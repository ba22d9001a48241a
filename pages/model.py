"""Model view: the spec, accuracy on the sidebar's dataset, the current input and its top-5 classes."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import numpy as np
import pandas as pd
import streamlit as st

from data import list_datasets
from ui import cache
from ui.context import images_of, tokens_of
from ui.figures import probability_bars
from ui.framing import show_figure
from ui.links import stop_view
from ui.pickers import sample_size_picker
from ui.sidebar import no_model_message, page_context
from ui.stored import background_panel, input_table, run_label, stored_toggle

WORST = 20
chosen = page_context()
st.title("Model")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen  # a PageContext from here on, in the functions below too

spec = ctx.model.spec
st.caption(
    "What the model is, how well it does on the dataset chosen in the sidebar, and what it predicts for the current "
    "input."
)


def accuracy_panel() -> None:
    """Accuracy on the sidebar's dataset over the inputs whose class the model knows: from a stored predictions
    run when there is one, else the whole split of a bundled set, or a sample of the user's own data (on
    request); and the worst-classified inputs."""
    ds = ctx.dataset
    st.subheader(f"Accuracy on {ds.name} ({ds.split})")
    stored, used = stored_toggle(ctx, "predictions", "Use the {run}", "model_use_stored")
    if used is not None:
        run = cache.stored_run(str(used.root), used.manifest.updated)
        note = f"Evaluated: the {run_label(used)}."
    else:
        n = len(ds)
        if ds.source not in list_datasets():
            if stored is None:
                background_panel(ctx, "predictions", "the model")
            n = sample_size_picker(len(ds), 256, key=f"model_n_{ds.key}", label="Inputs to evaluate")
            asked = (ctx.model_key, ds.key, n)
            st.button(
                "Evaluate",
                key="model_evaluate",
                on_click=lambda: st.session_state.setdefault("model_evaluated", set()).add(asked),
            )
            if asked not in st.session_state.get("model_evaluated", set()):
                st.info(f"Press **Evaluate** to run {spec.name} on {n} inputs of {ds.name}.")
                return
        run = cache.sample_run("predictions", ctx.model_key, ds.key, n, (), ctx.model, ds)
        note = ctx.sample_note(n, "Evaluated")
        ctx.warn_if_small(n, "this accuracy")
    a = run.arrays()
    rows, true, pred, true_prob = a["row"], a["label"], a["top_classes"][:, 0], a["true_prob"]
    known = true >= 0
    if not known.any():
        st.info(
            f"{ds.name} has no labels, so accuracy cannot be measured; the class-embedding and importance "
            "views use the model's predictions as targets."
            if not ds.labelled
            else f"None of {ds.name}'s classes match {spec.name}'s, so accuracy cannot be measured. The sidebar's "
            "label mapping shows both sides."
        )
        return
    st.metric(
        f"{int(known.sum())} labelled inputs of {ds.name}",
        f"{float((pred[known] == true[known]).mean()):.1%}",
        help=("Never used for training. " if (ds.source, ds.split) == (spec.dataset, "test") else "")
        + "Text models with a prompt head: zero-shot.",
    )
    st.caption(note)
    per_class = run.tables()["per_class"]
    st.dataframe(
        per_class,
        hide_index=True,
        width="stretch",
        height=min(400, 40 + 35 * len(per_class)),
        column_config={"accuracy": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)},
    )
    worst_inputs(np.asarray(rows), true, pred, true_prob)


def worst_inputs(rows: np.ndarray, true: np.ndarray, pred: np.ndarray, true_prob: np.ndarray) -> None:
    """The labelled inputs with the lowest probability of their true class; select one to open it."""
    ds = ctx.dataset
    order = np.flatnonzero(true >= 0)
    order = order[np.argsort(true_prob[order], kind="stable")][:WORST]
    table = pd.DataFrame(
        {
            "dataset row": rows[order],
            "input": [ds.names[r] for r in rows[order]],
            "label": [spec.class_names[c] for c in true[order]],
            "predicted": [spec.class_names[c] for c in pred[order]],
            "p(label)": true_prob[order],
        }
    )
    st.markdown(
        f"**The {len(order)} worst-classified inputs** (lowest probability of the true class); select one to open it."
    )
    input_table(table, ds, spec.modality, "model_worst", "worst_classified", height=250)


left, right = st.columns([1, 1])
with left:
    st.subheader("Spec")
    rows = {
        "name": spec.name,
        "architecture": spec.architecture,
        "modality": spec.modality,
        "layers × heads": f"{spec.n_layers} × {spec.n_heads}",
        "width (d_model)": spec.d_model,
        "tokens": (
            f"{spec.n_prefix} prefix + {spec.grid[0]}×{spec.grid[1]} patches of {spec.patch_size} px "
            f"({spec.image_size}×{spec.image_size} input, {spec.channels} channel(s))"
            if spec.grid
            else f"up to {spec.max_tokens} word pieces, [CLS] first"
        ),
        "classes": f"{spec.n_classes}: " + ", ".join(spec.class_names[:12]) + (" …" if spec.n_classes > 12 else ""),
        "class scores": "classifier on the CLS token"
        if spec.head == "classifier"
        else "cosine similarity to label prompts × 20 (mean-pooled embeddings)",
        "device": ctx.model.device.type,
        "source": spec.source,
    }
    # a static table wraps long values (the source path, the class list) instead of cutting them
    st.table(pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="property")))
with right:
    accuracy_panel()

st.subheader("Current input")
tr = ctx.trace()
probs = tr.probs[0]
cols = st.columns([1, 2])
with cols[0]:
    if spec.modality == "image":
        st.image(images_of(ctx.batch)[0], caption=ctx.caption, width=220, clamp=True)
    else:
        st.write(ctx.raw)
        st.caption(" ".join(tokens_of(ctx.batch)[0]))
    pred = int(probs.argmax())
    verdict = (
        ""
        if ctx.label is None
        else (" ✓ correct" if pred == ctx.label else f" ✗ (true: {spec.class_names[ctx.label]})")
    )
    st.markdown(f"**Prediction:** {spec.class_names[pred]} ({probs[pred]:.1%}){verdict}")
with cols[1]:
    top = pd.DataFrame({"class": list(spec.class_names), "probability": probs, "logit": tr.logits[0]})
    show_figure(
        probability_bars(probs, spec.class_names, k=5, true_label=ctx.label),
        "the five most probable classes for the current input; the true class, when known, is red.",
        top.sort_values("probability", ascending=False),
        "top5",
        key="top5",
    )
