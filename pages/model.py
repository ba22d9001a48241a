"""Model view: the spec, accuracy on the sidebar's dataset, the current input and its top-5 classes."""
import numpy as np
import pandas as pd
import streamlit as st

from analysis.evaluation import accuracy
from data import list_datasets
from ui import cache
from ui.figures import probability_bars
from ui.widgets import no_model_message, page_context, sample_size_picker, show_figure

ctx = page_context()
st.title("Model")
if ctx is None:
    no_model_message()
    st.stop()

spec = ctx.model.spec
st.caption("What the model is, how well it does on the dataset chosen in the sidebar, and what it predicts for the current input.")


def accuracy_panel() -> None:
    """Accuracy on the sidebar's dataset: the whole split of a bundled set, a sample of the user's own data (on
    request), over the inputs whose class the model knows."""
    ds, match = ctx.dataset, ctx.match
    st.subheader(f"Accuracy on {ds.name} ({ds.split})")
    bundled = ds.source in list_datasets()
    n = len(ds)
    if not bundled:
        n = sample_size_picker(len(ds), 256, key=f"model_n_{ds.key}", label="Inputs to evaluate")
        asked = (ctx.model_key, ds.key, n)
        st.button("Evaluate", key="model_evaluate",
                  on_click=lambda: st.session_state.setdefault("model_evaluated", set()).add(asked))
        if asked not in st.session_state.get("model_evaluated", set()):
            st.info(f"Press **Evaluate** to run {spec.name} on {n} inputs of {ds.name}.")
            return
    probs = cache.dataset_probs(ctx.model_key, ds.key, n, ds, ctx.model)
    true = match.to_model(ds.labels[ds.sample_rows(n)])
    known = true >= 0
    if not known.any():
        st.info(f"{ds.name} has no labels, so accuracy cannot be measured; the class-embedding and importance "
                "views use the model's predictions as targets." if not ds.labelled else
                f"None of {ds.name}'s classes match {spec.name}'s, so accuracy cannot be measured. The sidebar's "
                "label mapping shows both sides.")
        return
    pred = probs.argmax(-1)
    st.metric(f"{int(known.sum())} labelled inputs of {ds.name}", f"{accuracy(probs[known], true[known]):.1%}",
              help=("Never used for training. " if (ds.source, ds.split) == (spec.dataset, "test") else "") + "Text models with a prompt head: zero-shot.")
    st.caption(ctx.sample_note(n, "Evaluated"))
    classes = np.unique(true[known])
    per_class = pd.DataFrame({
        "class": [spec.class_names[c] for c in classes],
        "n": [int((true == c).sum()) for c in classes],
        "accuracy": [float((pred[true == c] == c).mean()) for c in classes]})
    st.dataframe(per_class, hide_index=True, width="stretch",
                 column_config={"accuracy": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                            max_value=1)})


left, right = st.columns([1, 1])
with left:
    st.subheader("Spec")
    rows = {
        "name": spec.name, "architecture": spec.architecture, "modality": spec.modality,
        "layers × heads": f"{spec.n_layers} × {spec.n_heads}", "width (d_model)": spec.d_model,
        "tokens": (f"{spec.n_prefix} prefix + {spec.grid[0]}×{spec.grid[1]} patches of {spec.patch_size} px "
                   f"({spec.image_size}×{spec.image_size} input, {spec.channels} channel(s))"
                   if spec.grid else f"up to {spec.max_tokens} word pieces, [CLS] first"),
        "classes": f"{spec.n_classes}: " + ", ".join(spec.class_names[:12]) + (" …" if spec.n_classes > 12 else ""),
        "class scores": "classifier on the CLS token" if spec.head == "classifier" else
        "cosine similarity to label prompts × 20 (mean-pooled embeddings)",
        "device": ctx.model.device.type, "source": spec.source,
    }
    st.dataframe(pd.DataFrame({"property": list(rows), "value": [str(v) for v in rows.values()]}),
                 hide_index=True, width="stretch")
with right:
    accuracy_panel()

st.subheader("Current input")
tr = ctx.trace()
probs = tr["probs"][0]
cols = st.columns([1, 2])
with cols[0]:
    if spec.modality == "image":
        st.image(ctx.batch.images[0], caption=ctx.caption, width=220, clamp=True)
    else:
        st.write(ctx.raw)
        st.caption(" ".join(ctx.batch.tokens[0]))
    pred = int(probs.argmax())
    verdict = "" if ctx.label is None else (" ✓ correct" if pred == ctx.label else
                                            f" ✗ (true: {spec.class_names[ctx.label]})")
    st.markdown(f"**Prediction:** {spec.class_names[pred]} ({probs[pred]:.1%}){verdict}")
with cols[1]:
    top = pd.DataFrame({"class": list(spec.class_names), "probability": probs, "logit": tr["logits"][0]})
    show_figure(probability_bars(probs, spec.class_names, k=5, true_label=ctx.label),
                "the five most probable classes for the current input; the true class, when known, is red.",
                top.sort_values("probability", ascending=False), "top5", key="top5")
