"""AppTest: the class-embedding view on digits-vit and minilm, its controls, and the paths users can get wrong."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from data import load_dataset
from tests.app.helpers import APP, TIMEOUT, assert_clean, figures, open_view
from ui import state
from ui.navigation import PAGES_DIR

PAGE = "pages/embedding.py"


def _open(model: str, labels: dict | None = None) -> AppTest:
    return open_view(PAGE, model, **({state.LABELS: labels} if labels else {}))


def _charts(at) -> int:
    return figures(at)  # plotly charts and pictures (an image's class map)


def test_digits_vit_all_panels_and_controls():
    at = _open("digits-vit")
    assert_clean(at)
    subheaders = [s.value for s in at.subheader]
    assert subheaders == [
        "The current input, block by block",
        "Identifiability per block",
        "Embedding map of the CLS token",
        "Separability per layer",
    ]
    assert _charts(at) == 5
    metrics = {m.label: m.value for m in at.metric}
    cls_rate = float(metrics["CLS"].rstrip("%"))
    assert cls_rate > 90  # digits-vit is ~98% accurate: its last CLS ranks the true class first
    assert any("patches rank" in c.value or "rank '" in c.value for c in at.caption)

    at.number_input(key="emb_n").set_value(80).run()
    at.toggle(key="emb_baseline").set_value(True).run()
    assert_clean(at)
    metrics = {m.label: float(m.value.rstrip("%")) for m in at.metric}
    assert metrics["CLS (random init)"] < 40 < metrics["CLS"]

    at.slider(key="emb_block").set_value(1).run()
    assert_clean(at)
    caption = next(c.value for c in at.caption if "after block 1" in c.value)
    class_map, probs = (json.loads(c.proto.json) for c in at.get("bidi_component"))  # pictures: patches, blocks
    assert probs["selected"] == [0, None] and probs["row_labels"][0] == "block 1"  # the block shown is outlined
    tips = class_map["tips"]
    ranking = sum(" ranks '" in t for t in tips)
    assert f"after block 1 ({ranking} of {len(tips)})" in caption
    at.slider(key="emb_layer").set_value(0).run()
    assert_clean(at)
    at.segmented_control(key="emb_where").set_value("mlp_out").run()
    assert_clean(at)
    at.radio(key="emb_method").set_value("tsne").run()
    assert_clean(at)
    assert any("not comparable across layers" in c.value for c in at.caption)
    assert _charts(at) == 5


def test_minilm_uses_pooled_and_word_tokens():
    at = _open("minilm")
    assert_clean(at)
    assert "Embedding map of the pooled token" in [s.value for s in at.subheader]
    labels = [m.label for m in at.metric]
    assert labels == ["pooled", "word tokens"]
    assert any("word token already ranks" in c.value for c in at.caption)
    assert _charts(at) == 5
    at.main.selectbox[0].select_index(1).run()  # track another class
    assert_clean(at)
    tracked = load_dataset("prose").class_names[at.main.selectbox[0].value]
    assert any(f"ranks '{tracked}' first" in c.value for c in at.caption)


def test_page_runs_standalone():
    at = AppTest.from_file(str(PAGES_DIR / "embedding.py"), default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert at.title[0].value == "Class embedding" and _charts(at) == 5


def test_label_set_without_the_dataset_classes_warns():
    at = _open("minilm", labels={"minilm": ("cats", "dogs")})
    assert_clean(at)
    assert any("do not include the classes" in w.value and "own prediction" in w.value for w in at.warning)
    assert _charts(at) >= 2  # the current input still works, and the sample is scored against the predictions
    assert any("scored against its prediction" in c.value for c in at.caption)


def test_tiny_sample_explains_instead_of_failing():
    at = _open("digits-vit")
    at.number_input(key="emb_n").set_value(3).run()
    assert_clean(at)
    assert any("needs a larger sample" in w.value for w in at.warning)


def test_model_whose_classes_the_dataset_lacks_explains_it(tiny_vit_dir):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run().run()
    at.sidebar.selectbox[0].select(at.sidebar.selectbox[0].options[-1]).run()
    at.sidebar.text_input(key=state.CUSTOM_MODEL).input(str(tiny_vit_dir)).run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert any("do not include the classes of digits" in w.value for w in at.warning)


def test_a_stored_embedding_run_replaces_the_sample(digits_vit):
    from analysis.embedding import embed_sample
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    run = run_job(digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "embedding", 100, batch_size=32), Store())
    at = open_view(PAGE)
    assert_clean(at)
    assert "stored run: 100 inputs of digits (test)" in at.toggle(key="emb_use_stored").label
    assert any(
        c.value.startswith("100 inputs of digits (test); each scored against its true class") for c in at.caption
    )
    rows = ds.sample_rows(100)  # a stored run of n inputs covers the dataset's sample of n
    ref = embed_sample(digits_vit, [ds.inputs[i] for i in rows], ds.labels[rows])
    rates = next(d.value for d in at.dataframe if "rate" in d.value.columns)
    want = ref.ident.rates()
    assert np.allclose(rates["rate"].to_numpy(float), want["rate"].to_numpy(float), atol=1e-6)
    Store().delete(run.root.name)
