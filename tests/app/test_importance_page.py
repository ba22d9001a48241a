"""AppTest of the head-importance view on digits-vit and minilm: compute, read the scores, select heads."""

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from analysis import importance as imp
from data import load_dataset
from tests.app.helpers import APP, TIMEOUT, held_run, open_view, plotly_array
from ui import state

PAGE = "pages/importance.py"


def _page(model: str, n: int) -> AppTest:
    at = open_view(PAGE, model)
    assert not at.exception, at.exception
    assert any("Compute head importance" in i.value for i in at.info)  # nothing heavy before the button
    at.number_input(key="imp_n_text" if model == "minilm" else "imp_n_image").set_value(n).run()
    at.button(key="imp_compute").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _download(at, label_start: str):
    return next(b for b in at.get("download_button") if b.proto.label.startswith(label_start))


def test_digits_scores_match_the_analysis_and_heads_can_be_selected(digits_vit):
    at = _page("digits-vit", 16)
    assert at.title[0].value == "Head importance"
    assert [s.value for s in at.subheader] == [
        "Partial pruning of the selected head",
        "Inputs where the selected head matters most",
        "Do the scores agree, and which one is right?",
        "Does the ablation kind change the ranking?",
        "Per class",
    ]
    assert len(at.get("bidi_component")) == 3  # the score grids
    assert len(at.get("plotly_chart")) == 1 + 1 + 1 + 1  # partial, agreement, curves, per class
    # the page shows the analysis' numbers for the selected head (0, 0)
    ds = load_dataset("digits", "test").subset(range(16))
    expected = imp.ablation_importance(digits_vit, ds, ("accuracy",))
    acc00 = expected[(expected.layer == 0) & (expected["head"] == 0)].value.item()
    listed = " ".join(m.value for m in at.markdown)
    assert f"accuracy: **{acc00:.4g}**" in listed

    # selecting a head (the number inputs bound to the shared selection) updates the state and the panel
    at.number_input(key="imp_head_layer").set_value(2).run()
    assert not at.exception
    assert at.session_state[state.HEAD] == (2, 0)
    assert any("layer 2 head 0" in c.value for c in at.caption)
    at.session_state[state.HEAD] = (1, 3)  # selected elsewhere (a click on a grid, another view): the inputs follow
    at.run()
    assert (at.number_input(key="imp_head_layer").value, at.number_input(key="imp_head_head").value) == (1, 3)

    # every score in the CSV, overall and per class
    assert _download(at, "Download head_importance_scores").proto.label.endswith(".csv")
    at.multiselect(key="imp_shown").set_value(["loss", "gradient"]).run()
    assert not at.exception
    assert len(at.get("bidi_component")) == 2 and len(at.get("plotly_chart")) == 4


def test_minilm_prompt_head_scores_and_cosine():
    at = _page("minilm", 4)
    assert at.multiselect(key="imp_shown").value == ["accuracy", "loss", "gradient_norm"]
    at.multiselect(key="imp_shown").set_value(["cosine", "gradient_norm"]).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="imp_quality").value == "accuracy"
    at.selectbox(key="imp_quality").set_value("cosine").run()
    assert not at.exception
    assert any("cosine distance" in c.value for c in at.caption)
    assert any("Per class" == s.value for s in at.subheader)
    assert not at.info  # the prose labels are minilm's classes: per-class scores are there
    # 4 inputs: the view says the scores are too noisy to mean much
    assert any("4 inputs covering" in w.value and "too few" in w.value for w in at.warning)


def test_minilm_with_other_labels_falls_back_to_the_embedding_change():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run().run()
    at.sidebar.selectbox[0].select("minilm").run()
    at.sidebar.text_area(key="labels_minilm").input("cooking\nastronomy").run()
    at.sidebar.button(key="apply_labels_minilm").click().run()
    at.switch_page(PAGE).run()
    default = at.number_input(key="imp_n_text").value  # the text default (at most 32), fitted to ~30 s here
    assert 8 <= default <= 32 and default % 8 == 0
    at.number_input(key="imp_n_text").set_value(3).run()
    at.button(key="imp_compute").click().run()
    assert not at.exception and not at.error
    infos = " ".join(i.value for i in at.info)
    assert "own" in infos and "cosine distance" in infos
    assert "Per-class scores need inputs whose true class the model knows" in infos
    assert at.multiselect(key="imp_shown").value[0] == "cosine"


def test_no_scores_picked_and_oversized_sample_are_explained():
    at = _page("digits-vit", 8)
    at.multiselect(key="imp_shown").set_value([]).run()
    assert not at.exception
    assert any("Pick at least one score" in w.value for w in at.warning)
    at.number_input(key="imp_n_image").set_value(100_000).run()
    assert not at.exception
    assert any("using all of them" in w.value for w in at.warning)
    assert any("on 360 inputs of digits" in i.value for i in at.info)  # a new sample waits for the button


def test_a_stored_run_is_shown_at_once_and_opens_inputs(digits_vit):
    """A precomputed run of digits-vit on the whole digits test split replaces the sample computation."""
    from runs import Store
    from runs.jobs import BACKGROUND_BATCH, run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    run = run_job(
        digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "importance", 120, BACKGROUND_BATCH), Store()
    )
    at = open_view(PAGE)
    assert not at.exception and not at.error
    toggle = at.toggle(key="imp_use_stored")
    assert toggle.value and "stored run: 120 inputs of digits (test)" in toggle.label
    assert any("Per class" == s.value for s in at.subheader)
    tables = [d.value for d in at.dataframe if "dataset row" in d.value.columns]
    assert tables and len(tables[0]) == 20
    acc, loss = run.arrays()["accuracy"][:, 0, 0], run.arrays()["loss"][:, 0, 0]
    rows = run.arrays()["row"]  # the run's inputs: the dataset's stratified sample of 120
    assert tables[0]["dataset row"].iloc[0] == int(rows[np.lexsort((-loss, -acc))[0]])
    # every figure says which inputs it covers, and the pruning curves run on the stored run's inputs: their
    # unpruned loss is the model's mean loss on those 120 rows (not on the 64 of the view's sample)
    assert any("the 120 inputs of the stored run" in c.value for c in at.caption)
    assert not any("whole sample" in c.value for c in at.caption)
    at.selectbox(key="imp_quality").set_value("loss").run()
    curve = next(
        t
        for chart in at.get("plotly_chart")
        for t in json.loads(chart.proto.spec)["data"]
        if t.get("name") == "random order"
    )
    logits = digits_vit.run(digits_vit.prepare(ds.subset(rows).inputs), capture=False).logits
    expected = torch.nn.functional.cross_entropy(logits, torch.as_tensor(ds.labels[rows])).item()
    assert plotly_array(curve["x"])[0] == 0 and plotly_array(curve["y"])[0] == pytest.approx(expected, rel=1e-4)
    toggle.set_value(False).run()
    assert any("Press **Compute head importance**" in i.value for i in at.info)
    assert at.button(key="bg_start_importance").label.startswith("Run head importance on all 360 inputs")
    Store().delete(run.root.name)


def test_mean_ablation_scores_and_the_comparison_with_zero(digits_vit):
    """The view computes the kind it says, and the comparison table is the rank agreement of the two kinds."""
    import runs
    from analysis.importance import ranking_agreement, summarise
    from analysis.units.importance import as_scores

    at = open_view(PAGE)
    at.selectbox(key="imp_ablation").set_value("mean").run()
    at.number_input(key="imp_n_image").set_value(16).run()
    at.button(key="imp_compute").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("becomes **its mean output" in c.value for c in at.caption)
    ds = load_dataset("digits", "test")
    metrics = ("accuracy", "loss", "true_prob")

    def alone(**options):
        run = runs.sample("importance", digits_vit, ds, 16, **options)
        return summarise(as_scores(run.arrays(), metrics)["scores"])

    mean, zero = alone(ablation="mean"), alone()
    assert not np.allclose(mean["loss"], zero["loss"])  # the kinds differ, so the checks below can fail
    for layer, head in [(0, 0), (2, 1)]:
        at.session_state[state.HEAD] = (layer, head)
        at.run()
        listed = " ".join(m.value for m in at.markdown)
        assert f"loss: **{mean['loss'][layer, head]:.4g}**" in listed, (layer, head)
    at.selectbox(key="imp_compare").set_value("zero").run()
    at.button(key="imp_compare_compute").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "spearman" in d.value.columns)
    want = ranking_agreement(mean, zero, metrics, top=5)
    np.testing.assert_allclose(table.spearman.to_numpy(), want.spearman.to_numpy(), rtol=1e-6)
    assert table["top 5 shared"].tolist() == want.shared.tolist()


def test_a_background_run_is_followed_only_by_the_view_with_its_parameters(digits_vit):
    """A zero-ablation run another process is writing (run_job in a thread, held after its first chunk): the view
    with zero ablation follows it; with mean ablation the run is not the view's (no 'being computed', its own
    background button), and once stored it is shown for zero ablation only."""
    from runs import Store

    with held_run(digits_vit, "importance", 80) as manifest:
        at = open_view(PAGE)
        assert any("being computed in the background" in i.value for i in at.info)
        assert "bg_start_importance" not in _keys(at)
        at.selectbox(key="imp_ablation").set_value("mean").run()
        assert not at.exception
        assert any("Press **Compute head importance**" in i.value for i in at.info), [i.value for i in at.info]
        assert "bg_start_importance" in _keys(at)
    at.run()
    assert "imp_use_stored" not in _keys(at)  # the stored run is zero ablation's
    at.selectbox(key="imp_ablation").set_value("zero").run()
    assert at.toggle(key="imp_use_stored").label.startswith("Show the stored run: 80 inputs of digits")
    Store().delete(manifest.key)


def _keys(at: AppTest) -> set[str]:
    """The keys of the buttons and toggles on the page."""
    return {w.key for w in [*at.button, *at.toggle]}
