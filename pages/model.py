"""Model view: the spec, accuracy on the bundled held-out split, the current input and its top-5 classes."""
import numpy as np
import pandas as pd
import streamlit as st

from analysis.evaluation import accuracy
from ui import cache
from ui.figures import probability_bars
from ui.widgets import no_model_message, page_context, show_figure

ctx = page_context()
st.title("Model")
if ctx is None:
    no_model_message()
    st.stop()

spec = ctx.model.spec
st.caption("What the model is, how well it does on held-out data, and what it predicts for the current input.")
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
    st.subheader("Accuracy on the bundled held-out split")
    if spec.dataset:
        ds = cache.get_dataset(spec.dataset, "test")
        probs = cache.dataset_probs(ctx.model_key, spec.dataset, "test", ctx.model)
        pred = probs.argmax(-1)
        st.metric(f"{spec.dataset} test split ({len(ds)} inputs)", f"{accuracy(probs, ds.labels):.1%}",
                  help="Never used for training. Text models: zero-shot, from label prompts.")
        per_class = pd.DataFrame({
            "class": ds.class_names,
            "n": np.bincount(ds.labels, minlength=len(ds.class_names)),
            "accuracy": [float((pred[ds.labels == c] == c).mean()) if (ds.labels == c).any() else np.nan
                         for c in range(len(ds.class_names))]})
        st.dataframe(per_class, hide_index=True, width="stretch",
                     column_config={"accuracy": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                max_value=1)})
    else:
        st.info("This model has no bundled dataset; upload inputs in the sidebar to see its predictions.")

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
