"""AppTest of the Attention view on digits-vit and minilm: select a head, change the query, bad inputs."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from data import load_dataset
from models import HookedModel
from tests.app.helpers import APP, TIMEOUT, assert_clean, figures, open_view, stored_run, widget
from ui import state
from ui.attention_figures import OVERLAY, default_query, mosaic_picture, overview_mosaic, query_maps, query_options
from ui.figures import heat_rgb


def _attention_page(model: str) -> AppTest:
    at = open_view("pages/attention.py", model)
    assert_clean(at)
    return at


def _open_tab(at: AppTest, name: str) -> AppTest:
    """Select a tab of the view's lazy tabs (only the open one runs), as a click on it does."""
    at.session_state["attn_tab"] = name
    at.run()
    assert_clean(at)
    return at


def test_only_the_open_tab_runs():
    at = _attention_page("digits-vit")
    assert [s.value for s in at.subheader] == ["All heads", "Layer 0, head 0"]
    _open_tab(at, "Distance and strength")
    subheaders = [s.value for s in at.subheader]
    assert "Attention distance per head" in subheaders and "All heads" not in subheaders
    size = widget(at.number_input, "Inputs from digits")
    size.set_value(64).run()
    _open_tab(at, "Heads of this input")
    _open_tab(at, "Patterns")  # the sample size chosen under the distance tab carries over
    assert widget(at.number_input, "Inputs from digits").value == 64
    assert "Pattern map" in [s.value for s in at.subheader]


@pytest.fixture
def forward_counter(monkeypatch):
    """Counts HookedModel.run calls from the moment it is used."""
    calls = []
    original = HookedModel.run

    def counting(self, *args, **kwargs):
        calls.append(self.spec.name)
        return original(self, *args, **kwargs)

    def start():
        monkeypatch.setattr(HookedModel, "run", counting)
        return calls

    return start


def test_digits_vit_select_head_and_query_without_new_forward(forward_counter):
    at = _attention_page("digits-vit")
    seen = [s.value for s in at.subheader]
    charts = figures(at)
    for tab in ("Distance and strength", "Patterns"):
        _open_tab(at, tab)
        seen += [s.value for s in at.subheader]
        charts += figures(at)
    for expected in (
        "All heads",
        "Layer 0, head 0",
        "Attention distance per head",
        "Ring strength per head",
        "Pattern map",
        "Cluster prototypes",
    ):
        assert expected in seen
    assert charts >= 8
    _open_tab(at, "Heads of this input")
    calls = forward_counter()

    widget(at.number_input, "Layer").set_value(2).run()
    assert_clean(at)
    assert at.session_state[state.HEAD] == (2, 0)
    assert "Layer 2, head 0" in [s.value for s in at.subheader]

    query = widget(at.selectbox, "Query token")
    assert query.value == 0  # CLS by default
    query.set_value(1 + 3 * 8 + 4).run()  # patch row 3, col 4
    assert_clean(at)
    assert at.session_state[state.QUERY] == 29
    assert widget(at.selectbox, "Query token").value == 29
    assert any("patch row 3, col 4's attention" in c.value for c in at.caption)
    _open_tab(at, "Distance and strength")  # the sample was computed above
    at.toggle(key="attn_ring_per_token").set_value(True).run()
    assert_clean(at)
    assert any("per token r steps away" in c.value for c in at.caption)
    assert calls == []  # head, query and view changes reuse the cached attention


def test_minilm_select_head_query_and_one_token_text(forward_counter):
    at = _attention_page("minilm")
    assert "All heads" in [s.value for s in at.subheader]
    assert any("line" in s.label.lower() for s in at.slider)  # the line view's top-k slider
    charts = len(at.get("plotly_chart"))  # the overview and the line view; the matrix waits for its toggle
    assert not any("rows = queries, columns = keys;" in m.value for m in at.caption)
    at.toggle(key="attn_show_matrix").set_value(True).run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == charts + 1
    assert any("rows = queries, columns = keys;" in m.value for m in at.caption)
    _open_tab(at, "Distance and strength")
    _open_tab(at, "Heads of this input")
    calls = forward_counter()
    widget(at.number_input, "Head").set_value(7).run()
    assert_clean(at)
    assert at.session_state[state.HEAD] == (0, 7)
    query = widget(at.selectbox, "Query token")
    n_tokens = len(query.options)
    overview = at.get("bidi_component")[0].proto.json
    query.set_value(3).run()
    assert_clean(at)
    assert at.session_state[state.QUERY] == 3 and n_tokens > 5
    assert at.get("bidi_component")[0].proto.json == overview  # a text's overview is the same for every query
    _open_tab(at, "Distance and strength")
    at.toggle(key="attn_ring_per_token").set_value(True).run()
    assert_clean(at)
    assert calls == []
    _open_tab(at, "Heads of this input")

    at.sidebar.radio[0].set_value("text").run()
    next(t for t in at.sidebar.text_area if t.label == "Text").input("Hi").run()
    assert_clean(at)
    assert any("word piece" in i.value for i in at.info)
    assert "Layer 0, head 7" in [s.value for s in at.subheader]


def test_sample_size_larger_than_dataset_is_clamped():
    at = _open_tab(_attention_page("minilm"), "Distance and strength")
    size = widget(at.number_input, "Inputs from prose")
    size.set_value(5000).run()
    assert_clean(at)
    n = len(load_dataset("prose", "test"))
    assert any(f"has {n} inputs; using all of them" in w.value for w in at.warning)
    assert any(f"over {n} inputs" in c.value for c in at.caption)  # the distance plot uses the whole split

    # the VA paper's autoencoder and agglomerative clustering on the same cached sample
    _open_tab(at, "Patterns")
    widget(at.radio, "Embedding").set_value("autoencoder").run()
    widget(at.radio, "Clustering").set_value("agglomerative").run()
    assert_clean(at)
    assert "Cluster prototypes" in [s.value for s in at.subheader]
    assert any("Inputs in cluster 0" in md.value for md in at.markdown)


def test_model_without_cls_falls_back_to_mean_over_queries():
    """A model without prefix tokens: no CLS query; the default query is the mean over patch queries."""
    grid = (3, 3)
    options = query_options(0, grid, None)
    assert default_query(0, grid) == -1 and 0 in options and "CLS" not in " ".join(options.values())
    assert default_query(1, grid) == 0 and options[0].startswith("patch")
    rng = np.random.default_rng(0)
    attn = rng.random((2, 2, 9, 9))
    attn /= attn.sum(-1, keepdims=True)
    maps = query_maps(attn, -1, 0, grid)
    np.testing.assert_allclose(maps, attn.mean(2).reshape(2, 2, 3, 3))
    assert np.allclose(maps.sum((-1, -2)), 1.0)
    grid = overview_mosaic(maps)  # one cell per head, its hover naming the head and its largest value
    assert grid.tips == [
        f"layer {l} head {h} (largest {maps[l, h].max():.3f})\nclick to open this head"
        for l in range(2)
        for h in range(2)
    ]
    assert default_query(0, None) == 0  # text without a prefix: the first token


def test_saved_folder_model_without_bundled_dataset(tiny_vit_dir):
    """A ViT loaded from a folder (16x16 RGB, 4x4 grid, no dataset of its own) runs on the digits sample."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run().run()
    at.sidebar.selectbox[0].select("Load a model from a folder or hub id…").run()
    at.sidebar.text_input[0].input(str(tiny_vit_dir)).run()
    at.switch_page("pages/attention.py").run()
    assert_clean(at)
    assert "Layer 0, head 0" in [s.value for s in at.subheader]
    assert len(widget(at.selectbox, "Query token").options) == 1 + 1 + 16  # mean, CLS, 4 x 4 patches
    _open_tab(at, "Distance and strength")
    assert widget(at.number_input, "Inputs from digits").value == 128


def test_distance_from_a_stored_run(digits_vit):
    at = _open_tab(open_view("pages/attention.py"), "Distance and strength")
    assert any(b.label.startswith("Run the attention statistics on all 360") for b in at.button)
    with stored_run(digits_vit, "attention", 200):
        at.run()
        assert_clean(at)
        assert at.toggle(key="attn_use_stored").value
        assert "stored run: 200 inputs of digits (test)" in at.toggle(key="attn_use_stored").label


def test_overview_picture_cells_gaps_and_overlay():
    """The overview mosaic is one picture: cell (l, h) shows cells[l, h] on the shared scale, scaled up in
    blocks, opaque, gaps are clear, and over an image each pixel is OVERLAY heat + (1 - OVERLAY) image."""
    cells = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    rgba, gap = mosaic_picture(cells, float(cells.max()), None, 8)
    picture = rgba[..., :3]
    step = 8 + gap
    assert rgba.shape == (2 * step - gap, 3 * step - gap, 4)
    for l in range(2):
        for h in range(3):
            block = picture[l * step : l * step + 8, h * step : h * step + 8]
            want = heat_rgb(cells[l, h], 0.0, float(cells.max()))  # [2, 2, 3]
            np.testing.assert_allclose(block[:4, :4], np.broadcast_to(want[0, 0], (4, 4, 3)))
            np.testing.assert_allclose(block[4:, 4:], np.broadcast_to(want[1, 1], (4, 4, 3)))
    np.testing.assert_allclose(rgba[8 : 8 + gap, :, 3], 0.0)  # the gap between layer rows: clear
    np.testing.assert_allclose(rgba[:8, :8, 3], 1.0)
    np.testing.assert_allclose(heat_rgb(np.array([0.0, 1.0]), 0, 1) * 255, [[68, 1, 84], [253, 231, 37]], atol=1)
    grey = np.full((8, 8, 1), 0.5)
    over, _ = mosaic_picture(cells, float(cells.max()), grey, 8)
    np.testing.assert_allclose(over[:8, :8, :3], OVERLAY * picture[:8, :8] + (1 - OVERLAY) * 0.5, atol=1 / 255)


def test_the_head_picker_shows_the_heads_pattern_type(digits_vit):
    """The badge under the head picker is the head's strongest type over the sample the Circuits view uses."""
    import runs
    from ui.circuits_figures import badge
    from ui.context import HEAD_TYPE_INPUTS

    at = open_view("pages/attention.py")
    at.session_state[state.HEAD] = (2, 1)
    at.run()
    assert not at.exception
    run = runs.sample("head_types", digits_vit, load_dataset("digits", "test"), HEAD_TYPE_INPUTS)
    strongest = run.tables()["strongest"]
    assert any(c.value == f"Pattern type: **{badge(strongest, 2, 1)}**" for c in at.caption)
    overview = json.loads(next(c for c in at.get("bidi_component") if "click to open" in c.proto.json).proto.json)
    assert overview["tips"][2 * 4 + 1].splitlines()[1] == f"pattern type: {badge(strongest, 2, 1)}"  # 4 heads a row
