"""AppTest: the Spectral view on digits-vit and minilm, the temperature controls, the activation lab, and the
inputs users can get wrong."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import assert_clean, figures, open_view, plotly_array, stored_run
from ui import state

PAGE = "pages/spectral.py"
TABS = {  # tab -> its sections (after the temperature controls) and number of charts
    "Low-pass filter": (
        ["High- vs low-frequency energy per layer", "Fourier profile of the feature maps (Park & Kim)"],
        3,
    ),  # HC/DC, profile, end point
    "Heads": (["A head's frequency response"], 3),  # the grid; the gain and eigenvalues in one; the 2-D response
    "Rank collapse": (["Rank collapse and the rank of attention"], 2),
    "Temperature sweep": (["Temperature sweep"], 1),
}


def _open(model: str, tab: str | None = None) -> AppTest:
    at = open_view(PAGE, model, spectral_n=8)  # a small sample keeps the test quick
    return _tab(at, tab) if tab else at


def _tab(at: AppTest, name: str) -> AppTest:
    """Open a tab of the view's lazy tabs (only the open one runs), as a click on it does."""
    at.session_state["spectral_tab"] = name
    return at.run()


def _figure(at, title_word: str) -> dict:
    """The plotly JSON of the first chart whose JSON mentions `title_word`."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if title_word in json.dumps(spec["layout"], ensure_ascii=False):
            return spec
    raise AssertionError(f"no chart mentions {title_word!r}")


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_digits_vit_every_tab_and_the_temperature_slider():
    at = _open("digits-vit")
    assert_clean(at)
    assert at.title[0].value == "Spectral"
    for tab, (sections, charts) in TABS.items():
        _tab(at, tab)
        assert_clean(at)
        assert [s.value for s in at.subheader] == ["Attention temperature"] + sections, tab
        assert figures(at) == charts, tab
        assert not at.info  # every panel applies to a ViT
    _tab(at, "Low-pass filter")
    assert "How to read this" in _captions(at)
    hc_dc = _figure(at, "‖HC‖ / ‖DC‖ (log)")
    assert len(hc_dc["data"]) == 6  # three streams, for the input and the sample mean
    before = [d["y"] for d in hc_dc["data"]]

    corner = plotly_array(_figure(at, "Nyquist corner")["data"][0]["x"])  # the profile ends at the corner (π, π) ...
    at.radio(key="spectral_points").set_value("park_kim").run()  # ... or one step short, as Park & Kim's code
    assert_clean(at)
    theirs = plotly_array(_figure(at, "Park & Kim's axis")["data"][0]["x"])
    assert corner.max() == theirs.max() == 1.0 and len(theirs) == len(corner) - 1
    assert "their end point (0.75π per axis)" in _captions(at)
    at.radio(key="spectral_points").set_value("nyquist").run()

    at.select_slider(key="spectral_tau").set_value(100.0).run()
    assert_clean(at)
    assert "τ = 100" in _captions(at)
    after = _figure(at, "‖HC‖ / ‖DC‖ (log)")
    assert [d["y"] for d in after["data"]] != before  # the figures are redrawn at the new temperature
    _tab(at, "Activation lab")
    assert [s.value for s in at.subheader] == ["Attention temperature", "Activation lab"]
    assert len(at.get("plotly_chart")) == 3 and "Every tab but the lab is drawn at **τ = 100**" in _captions(at)
    _tab(at, "Heads")  # the temperature is kept while the lab is open
    assert at.select_slider(key="spectral_tau").value == 100.0 and "τ = 100" in _captions(at)

    at.radio(key="spectral_scope").set_value("chosen layers").run()
    assert_clean(at)
    assert "layer(s) 3" in _captions(at)
    at.multiselect(key="spectral_layers").set_value([]).run()
    assert not at.exception
    assert any("No layer chosen" in w.value for w in at.warning)


def test_digits_vit_head_picker_and_whatif():
    at = _open("digits-vit", "Heads")
    inputs = [n for n in at.number_input if n.key and n.key.startswith("spectral_head_layer")]
    inputs[0].set_value(2).run()
    assert_clean(at)
    assert at.session_state[state.HEAD] == (2, 0)
    assert "Layer 2, head 0" in _captions(at)
    assert "gain of L2 H0" in json.dumps(_figure(at, "eigenvalues of")["layout"], ensure_ascii=False)
    response = next(json.loads(c.proto.json) for c in at.get("bidi_component") if "2-D response" in c.proto.json)
    assert response["title"] == "2-D response of L2 H0" and not response["pickable"]
    rows = response["rows"]  # the patch grid's frequencies, DC in the centre
    assert response["row_labels"][rows // 2] == "0" and len(response["tips"]) == rows * response["cols"]
    _tab(at, "Rank collapse")
    at.multiselect(key="spectral_whatif").set_value([]).run()
    assert any("Pick at least one what-if" in w.value for w in at.warning)
    at.multiselect(key="spectral_whatif").set_value(["attention only"]).run()
    assert_clean(at)
    names = [d.get("name") for d in _figure(at, "x̄")["data"]]
    assert names == ["attention only"]
    at.radio(key="spectral_rank_norm").set_value("l1inf").run(timeout=120)  # exact, on this input only
    assert_clean(at)
    exact = _figure(at, "₁,∞")
    assert [d.get("name") for d in exact["data"]] == ["attention only"]
    y = plotly_array(exact["data"][0]["y"])
    assert 0 < y.min() and y.max() <= 1
    assert "on this input" in _captions(at)


def test_minilm_skips_the_2d_parts_and_adds_length_collapse():
    at = _open("minilm")
    assert_clean(at)
    assert "not a patch grid" in " ".join(i.value for i in at.info)
    _tab(at, "Heads")
    assert_clean(at)
    assert "no 2-D response image" in " ".join(i.value for i in at.info)
    _tab(at, "Temperature sweep")
    assert [s.value for s in at.subheader] == ["Attention temperature", "Temperature sweep", "Length collapse"]
    length = _figure(at, "mean pairwise cosine similarity")
    assert [d["name"] for d in length["data"]] == ["τ = 1"]
    at.select_slider(key="spectral_tau").set_value(4.0).run()
    assert_clean(at)
    length = _figure(at, "mean pairwise cosine similarity")
    assert [d["name"] for d in length["data"]] == ["τ = 1", "τ = 4"]


def test_activation_lab_bad_tones_then_recovery():
    at = _open("digits-vit", "Activation lab")
    for tones, message in (
        ("abc", "Could not read the tones"),
        ("3000", "Nyquist"),
        ("8.5", "DFT bin"),
        ("", "at least one tone"),
    ):
        at.text_input(key="spectral_tones").set_value(tones).run()
        assert not at.exception
        assert any(message in e.value for e in at.error), (tones, [e.value for e in at.error])
    at.text_input(key="spectral_tones").set_value("5, 12").run()
    assert_clean(at)
    assert "single tone only" in _captions(at)


def test_activation_lab_functions():
    at = _open("digits-vit", "Activation lab")
    at.selectbox(key="spectral_act").set_value("ReLU").run()
    at.slider(key="spectral_amp").set_value(1.0).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["measured"][0] == pytest.approx(1 / 3.141592653589793, rel=1e-3)
    assert table["analytic"].notna().sum() >= 5
    at.selectbox(key="spectral_act").set_value("the model's own MLP activation").run()
    assert_clean(at)
    assert at.dataframe[0].value["analytic"].isna().all()
    assert "single tone only" in _captions(at)


def test_a_stored_spectral_run_draws_the_dashed_lines(digits_vit):
    at = _open("digits-vit")
    assert any(b.label.startswith("Run the spectral metrics on all 360") for b in at.button)
    with stored_run(digits_vit, "spectral", 64):
        at.run()
        assert_clean(at)
        assert "stored run: 64 inputs of digits (test)" in at.toggle(key="spectral_use_stored").label
        assert any(c.value.startswith("Dashed lines: the stored run: 64 inputs") for c in at.caption)


def test_log_axes_label_their_ticks_in_full():
    """A short log range gets 1-2-5 ticks with full labels (plotly's own minor labels are bare digits); a range
    over many decades keeps the powers of ten."""
    from ui.figures import log_axis

    axis = log_axis([0.13, 0.4, 0.9], "ratio")
    assert axis["type"] == "log" and axis["tickvals"] == [0.1, 0.2, 0.5, 1.0]
    assert axis["ticktext"] == ["0.1", "0.2", "0.5", "1"]
    wide = log_axis([1e-6, 3.0, np.nan, -1.0], "ratio")
    assert wide["ticktext"] == ["1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1"]
