"""AppTest of the Circuits view on digits-vit and minilm: each analysis shows the analysis' numbers."""

import json

import numpy as np
import pytest
import torch

from analysis.circuits import composition_scores, direct_logit_attribution
from data import load_dataset
from tests.app.helpers import assert_clean, figures, open_view, plotly_array
from ui.circuits_figures import TYPE_SHORT

PAGE = "pages/circuits.py"


def _section(at, name: str):
    at.radio(key="circ_section").set_value(name).run()
    assert_clean(at)
    return at


def test_every_section_runs_on_digits(digits_vit):
    at = open_view(PAGE, "digits-vit")
    assert_clean(at)
    assert at.title[0].value == "Circuits"
    # direct logit attribution of the current input (the dataset's first row): the model's logit, split
    parts = direct_logit_attribution(digits_vit, digits_vit.prepare([load_dataset("digits", "test").inputs[0]]))
    name = digits_vit.spec.class_names[int(parts["target"][0])]
    text = " ".join(m.value for m in at.markdown)
    assert f"Logit of **{name}**: {float(parts['logit'][0]):.3f} = embed" in text
    assert figures(at) == 2  # the input's grid and the per-class mean

    _section(at, "Activation patching")
    assert figures(at) == 4  # heads grid, sublayer bars, residual map, the patch grid of one block
    at.number_input(key="circ_corrupt_row").set_value(0).run()  # row 0 is the current input: nothing to patch
    assert_clean(at)

    _section(at, "Composition")
    assert figures(at) == 1
    scores = composition_scores(digits_vit)
    top = max(float(torch.nan_to_num(scores[m], nan=-1).max() - scores[f"{m}_baseline"]) for m in "qkv")
    assert at.slider(key="circ_thr").max == pytest.approx(top, rel=1e-4)  # the threshold reaches the strongest edge

    _section(at, "Head types")
    assert figures(at) == 1
    assert any("Layer 0 head 0: **" in m.value for m in at.markdown)


def test_text_patching_asks_for_the_same_token_count(minilm):
    at = open_view(PAGE, "minilm")
    _section(at, "Activation patching")
    assert figures(at) == 3  # the corrupted text starts as the current text: same tokens
    at.text_input(key="circ_corrupt").set_value("Short.").run()
    assert not at.exception
    assert any("same number of tokens" in w.value for w in at.warning)


def test_head_types_on_text(minilm):
    at = open_view(PAGE, "minilm")
    _section(at, "Head types")
    assert figures(at) == 1
    badges = [m.value for m in at.markdown if m.value.startswith("Layer 0 head 0: **")]
    assert badges and badges[0].split("**")[1].split()[0] in ("prev", "next", "CLS", "SEP", "punct", "broad")


def test_a_stored_run_opens_in_the_view(digits_vit):
    from tests.app.helpers import stored_run

    with stored_run(digits_vit, "head_types", 8, batch_size=4) as run:
        at = open_view(PAGE, "digits-vit")
        _section(at, "Head types")
        assert at.toggle(key="circ_types_n_stored").value  # on by default
        best = run.tables()["strongest"].iloc[0]
        want = f"Layer 0 head 0: **{TYPE_SHORT[best['type']]} {best['score']:.2f}**"
        assert any(m.value == want for m in at.markdown)
    with stored_run(digits_vit, "patching", 8, batch_size=4):  # the view finds runs with its default options
        at = open_view(PAGE, "digits-vit")
        _section(at, "Activation patching")
        assert figures(at) == 5  # the pair's four and the stored pairs' mean grid


def test_an_image_with_a_region_noised_is_the_corrupted_input(digits_vit):
    """Patching against this image with its centre noised: the view shows exactly patch_effects of that pair."""
    from analysis.circuits import patch_effects
    from data.inputs import corrupt

    at = _section(open_view(PAGE, "digits-vit"), "Activation patching")
    at.selectbox(key="circ_corrupt_how").set_value("noise").run()
    at.selectbox(key="circ_corrupt_region").set_value("centre").run()
    assert_clean(at)
    clean = load_dataset("digits", "test").inputs[0]
    noised = corrupt(clean, "noise", "centre")
    want = patch_effects(digits_vit, digits_vit.prepare([clean]), digits_vit.prepare([noised]), direction="denoise")
    bars = next(
        t
        for chart in at.get("plotly_chart")
        for t in json.loads(chart.proto.spec)["data"]
        if t.get("name") == "attention output"
    )
    np.testing.assert_allclose(plotly_array(bars["y"]), want["attn"][0].numpy(), rtol=1e-5, atol=1e-6)
