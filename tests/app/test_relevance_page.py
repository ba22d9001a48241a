"""AppTest of the Relevance view on digits-vit and minilm: maps, target class, colour scale, faithfulness,
and the bad-input paths (a method that does not apply, a target class out of range)."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analysis.faithfulness import method_label
from tests.app.helpers import APP, TIMEOUT, assert_clean, link_message, open_view, widget


def _relevance_page(model: str, **state) -> AppTest:
    at = open_view("pages/relevance.py", model, **state)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _score(at: AppTest, n: int, methods: list[str], modality: str = "image") -> AppTest:
    at.number_input(key=f"rel_n_{modality}").set_value(n)
    widget(at.multiselect, "Methods to score").set_value(methods)
    at.get("form_submit_button")[0].click()
    return at.run()


@pytest.mark.parametrize("model", ["digits-vit", "minilm"])
def test_maps_target_and_faithfulness(model):
    at = _relevance_page(model)
    assert_clean(at)
    subheaders = [s.value for s in at.subheader]
    assert any(s.startswith("Maps for class") and "(predicted, probability" in s for s in subheaders)
    assert "Conservation: AttnLRP relevance vs the logit" in subheaders
    assert len(at.get("bidi_component")) == 4  # the maps: one picture per default method (an image's or a text's)
    assert len(at.get("plotly_chart")) == 1  # the conservation scatter
    assert any("total relevance" in md.value for md in at.markdown)

    target = widget(at.selectbox, "Target class")
    name = target.options[3].split(": ", 1)[1].rsplit(" (", 1)[0]  # option 0 is "predicted", then classes 0, 1, 2
    scatter = at.get("plotly_chart")[0].proto.spec
    target.set_value(2).run()
    assert_clean(at)
    assert any(s.value.startswith(f"Maps for class {name}") for s in at.subheader), [s.value for s in at.subheader]
    assert any(md.value.startswith(f"Class **{name}**: total relevance") for md in at.markdown)
    assert at.get("plotly_chart")[0].proto.spec == scatter  # the scatter marks the predicted class: not drawn again
    widget(at.radio, "Colour scale").set_value("shared").run()
    assert_clean(at)
    # the choice stays valid when the input changes (the option labels do not depend on the input)
    for choice in (2, -1):  # a class, the predicted class
        widget(at.selectbox, "Target class").set_value(choice).run()
        box = next(n for n in at.sidebar.number_input if n.label.startswith("Input of"))
        box.set_value(box.value + 1).run()
        assert_clean(at)
        target = widget(at.selectbox, "Target class")
        assert target.value == choice and target.index is not None, (choice, target.value, target.index)

    at = _score(at, 4, ["rollout", "attnlrp"], "text" if model == "minilm" else "image")
    assert_clean(at)
    assert any(md.value.startswith("**Scores over 4 inputs of") for md in at.markdown)
    table = next(d.value for d in at.dataframe if "Method" in d.value.columns)
    assert list(table["Method"]) == ["Attention rollout", "AttnLRP", "Random map"]
    assert len(at.get("plotly_chart")) == (4 if model == "digits-vit" else 3)  # + the curves (+ the gallery)
    if model == "minilm":
        assert len(at.dataframe) == 3  # the conservation split, the faithfulness table, the disagreement table
    assert any("4 inputs covering" in w.value and "too few" in w.value for w in at.warning)
    floor = [t.value for t in [*at.caption, *at.warning] if t.value.startswith("Insertion baseline")]
    assert len(floor) == 1, floor
    if model == "digits-vit":  # the blurred digit is still read as itself: the view calls the test saturated
        assert widget(at.selectbox, "Insertion starts from").value == "blur"
        assert "saturated" in floor[0] and any(w.value == floor[0] for w in at.warning)
        widget(at.selectbox, "Insertion starts from").set_value("zero")
        at = _score(at, 4, ["rollout", "attnlrp"])
        assert_clean(at)
        floor = [c.value for c in at.caption if c.value.startswith("Insertion baseline")]
        assert len(floor) == 1 and "zero pixels" in floor[0] and "saturated" not in floor[0], floor
    else:
        assert widget(at.selectbox, "Insertion starts from").options == [
            "zero embeddings",
            "the text's mean token embedding",
        ]


def test_method_not_applicable_is_explained():
    at = _relevance_page("minilm", relevance_methods=["gradcam", "rollout"])
    assert_clean(at)
    warnings = [w.value for w in at.warning]
    assert any("Attention GradCAM is left out" in w and "minilm" in w for w in warnings), warnings
    assert widget(at.multiselect, "Methods").value == ["rollout"]
    assert "gradcam" not in widget(at.multiselect, "Methods").options


def test_target_out_of_range_in_link_gives_clear_error():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(view="relevance", target="12")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    message = link_message(at)
    assert "target=12 does not exist here" in message and "predicted, 0, 1" in message, message
    assert any("(predicted, probability" in s.value for s in at.subheader)  # falls back to the predicted class
    assert at.query_params["target"] == "predicted"


def test_going_through_the_classes_computes_every_class_once(monkeypatch):
    """The first class chosen computes every class's map of a class-specific method in one batched pass; the next
    class computes nothing; the map shown is the method's map for that class."""
    import analysis.relevance
    from analysis.relevance import METHODS
    from ui import cache

    cache.relevance_maps.clear()
    calls = []  # (method, batch size) of each computation
    explain = analysis.relevance.explain

    def counted(model, batch, method, **kw):
        calls.append((method, len(batch)))
        return explain(model, batch, method, **kw)

    monkeypatch.setattr(analysis.relevance, "explain", counted)
    at = _relevance_page("digits-vit")
    methods = widget(at.multiselect, "Methods").value
    assert sorted(calls) == sorted((m, 1) for m in methods)  # the predicted class only, as the view opens
    calls.clear()
    widget(at.selectbox, "Target class").set_value(2).run()
    assert_clean(at)
    assert sorted(calls) == sorted((m, 10) for m in methods if METHODS[m].class_specific)  # digits: 10 classes
    calls.clear()
    widget(at.selectbox, "Target class").set_value(7).run()
    assert_clean(at)
    assert calls == []
    name = widget(at.selectbox, "Target class").options[8].split(": ", 1)[1]  # "predicted", then 0, 1, ...
    assert any(s.value.startswith(f"Maps for class {name}") for s in at.subheader)


def test_no_method_picked_and_no_method_scored():
    at = _relevance_page("digits-vit")
    widget(at.multiselect, "Methods").set_value([]).run()
    assert_clean(at)
    assert any("Pick at least one method" in i.value for i in at.info)
    at = _score(at, 4, [])
    assert any("Pick at least one method to score" in e.value for e in at.error)


def test_a_stored_run_lists_the_inputs_where_methods_disagree(digits_vit):
    from analysis.faithfulness import disagreement
    from analysis.relevance import explain
    from data import load_dataset
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    at = _relevance_page("digits-vit")
    assert any(b.label.startswith("Run rollout, gradient rollout and AttnLRP on all 360") for b in at.button)
    run = run_job(digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "relevance", 48, batch_size=16), Store())
    at.run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "disagreement" in d.value.columns)
    rows = ds.sample_rows(48)  # a run of n inputs covers the dataset's sample of n
    batch = digits_vit.prepare(ds.subset(rows).inputs)
    pred = digits_vit.logits(batch).argmax(-1)
    maps = {k: explain(digits_vit, batch, k, target=pred) for k in ("rollout", "grad_rollout", "attnlrp")}
    expected = disagreement(maps)
    assert len(table) == 20 and int(table["dataset row"].iloc[0]) == int(rows[np.argmax(expected)])
    assert np.allclose(table["disagreement"].iloc[0], expected.max(), atol=1e-6)
    Store().delete(run.root.name)


def test_a_stored_faithfulness_run_is_shown_instead_of_the_form(digits_vit):
    from data import load_dataset
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    m = manifest_for(digits_vit, "digits-vit", ds, "faithfulness", 16, batch_size=8, methods=("rollout", "attnlrp"))
    run = run_job(digits_vit, ds, m, Store())
    at = _relevance_page("digits-vit")
    assert_clean(at)
    assert "stored run: 16 inputs of digits (test)" in at.toggle(key="rel_use_stored_faithfulness").label
    assert any(md.value.startswith("**Scores over 16 inputs of digits (test)") for md in at.markdown)
    shown = next(d.value for d in at.dataframe if "Method" in d.value.columns)
    assert list(shown["Method"]) == ["Attention rollout", "AttnLRP", "Random map"]
    assert not at.get("form_submit_button")  # the sample form waits behind the toggle
    at.toggle(key="rel_use_stored_faithfulness").set_value(False).run()
    assert at.get("form_submit_button")
    Store().delete(run.root.name)


def test_overlay_scale_opacity_and_plain_maps():
    """An image's maps are one picture per method; per-map scaling by default (a diffuse map stays visible), the
    shared scale gives every map the same limits; the opacity slider and the image toggle reach the pictures."""
    from tests.app.test_head_chart import _pixels

    at = _relevance_page("digits-vit")
    assert widget(at.radio, "Colour scale").value == "per map"

    def maps() -> list[dict]:
        return [json.loads(c.proto.json) for c in at.get("bidi_component")]

    sent = maps()
    assert [m["title"] for m in sent] == [method_label(k) for k in ("rollout", "grad_rollout", "chefer2021", "attnlrp")]
    assert all(not m["pickable"] and m["rows"] * m["cols"] == len(m["tips"]) > 1 for m in sent)  # a tip per patch
    assert [m["name"] for m in sent][-1].startswith("relevance_digits_test_0_class") and sent[-1]["name"].endswith(
        "_AttnLRP"
    )
    assert len({m["scale"]["max"] for m in sent}) > 1  # each map on its own scale
    image_dark = [_pixels(m["picture"]).min() for m in sent]
    assert min(image_dark) < 40  # the digit's black background shows through where relevance is about zero

    widget(at.radio, "Colour scale").set_value("shared").run()
    assert len({(m["scale"]["min"], m["scale"]["max"]) for m in maps()}) == 1
    at.slider(key="rel_opacity").set_value(0.5).run()
    at.toggle(key="rel_under").set_value(False).run()
    assert_clean(at)
    # on white at half opacity (alpha at most 0.95 / 2), no channel of any colour falls below 0.525 of white
    assert all(_pixels(m["picture"]).min() >= 0.525 * 255 - 1 for m in maps())


def test_a_long_text_gets_the_compact_view_and_keeps_its_truncation_visible():
    """A 2,000-word text: the view lists each method's most relevant word pieces, puts the full maps in a
    scrolling panel of fixed height, and repeats the truncation note next to the maps."""
    from ui import state

    text = " ".join(["The patient was given insulin to control the level of glucose in the blood."] * 150)
    at = _relevance_page("minilm", **{f"{state.SOURCE}_text": "text", state.TEXT: text})
    assert not at.error, [e.value for e in at.error]
    assert any("truncated" in w.value for w in at.main.warning)
    assert any("word pieces: below, the 15 most relevant" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert len(table) == 15 and {"rank", "Attention rollout"} <= set(table.columns)
    assert len(at.get("plotly_chart")) == 1 and len(at.get("bidi_component")) == 4  # conservation; maps in the panel
    n = int(next(i.value for i in at.info if "word pieces: below" in i.value).split()[0])
    words = json.loads(at.get("bidi_component")[0].proto.json)["texts"]
    assert len([w for w in words if w]) == n and words[0] == "the"  # every word piece, in order


def test_conservation_scatter_names_only_the_predicted_class_and_the_top_logits():
    """Ten class names at similar logits overlap: the scatter names the predicted class (red) and the three
    highest logits and keeps every name in the hover."""
    import pandas as pd

    from ui.relevance_figures import conservation_figure

    df = pd.DataFrame(
        {"class": range(10), "name": [f"c{i}" for i in range(10)], "logit": range(10), "total_relevance": range(10)}
    )
    points = conservation_figure(df, predicted=2).data[1]
    assert [t for t in points.text if t] == ["c2", "c7", "c8", "c9"]
    assert [i for i, colour in enumerate(points.marker.color) if colour != points.marker.color[0]] == [2]
    assert list(points.customdata) == list(df["name"])
    # two classes at nearly the same point: only the predicted one is named, the other is left to the hover
    close = pd.DataFrame(
        {"class": range(4), "name": list("abcd"), "logit": [8.2, 8.25, 3, 1], "total_relevance": [4.4, 4.41, 1, 0]}
    )
    assert [t for t in conservation_figure(close, predicted=0).data[1].text if t] == ["a", "c"]


def test_conservation_split_table_accounts_for_the_whole_logit():
    """Image models: beside the conservation scatter, the target logit's relevance split into its parts, which
    add up to the logit (AttnLRP's gap is accounted for)."""
    at = _relevance_page("digits-vit")
    table = next(d.value for d in at.dataframe if "part" in d.value.columns)
    assert list(table["part"])[0] == "the input (the maps)" and len(table) == 5
    assert abs(table["share"].sum() - 1.0) < 1e-3


def test_text_relevance_read_at_the_words_or_the_embedding_output():
    """Text models: AttnLRP read at the word embeddings by default (its split names the position embeddings
    and the LayerNorm), or at the embedding output (those shares inside the maps); the maps change."""
    at = _relevance_page("minilm")
    assert widget(at.radio, "AttnLRP relevance read at").value == "words"
    table = next(d.value for d in at.dataframe if "part" in d.value.columns)
    assert len(table) == 5 and abs(table["share"].sum() - 1.0) < 1e-3
    assert {"embedding LayerNorm bias", "position + token-type embeddings"} <= set(table["part"])
    words = next(md.value for md in at.markdown if "total relevance" in md.value)
    widget(at.radio, "AttnLRP relevance read at").set_value("embedding").run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "part" in d.value.columns)
    assert len(table) == 3 and abs(table["share"].sum() - 1.0) < 1e-3
    assert next(md.value for md in at.markdown if "total relevance" in md.value) != words


def test_conservation_of_a_many_class_model_covers_the_top_logits(tmp_path, monkeypatch):
    """A model of many classes (here 40) gets the conservation scatter of its 32 highest logits and the target,
    not one LRP pass per class; a target beyond them gets a pass of its own (the top logits' pass is kept)."""
    import analysis.conservation
    from tests.conftest import save_tiny_vit
    from ui import state
    from ui.relevance_figures import CONSERVATION_CLASSES

    passes = []  # the classes of each conservation pass
    split = analysis.conservation.conservation_split

    def counted(model, batch, classes, *args):
        passes.append(list(classes))
        return split(model, batch, classes, *args)

    monkeypatch.setattr(analysis.conservation, "conservation_split", counted)

    save_tiny_vit(tmp_path, [f"class{i}" for i in range(40)], layers=1)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run().run()
    at.sidebar.selectbox[0].select(at.sidebar.selectbox[0].options[-1]).run()
    at.sidebar.text_input(key=state.CUSTOM_MODEL).input(str(tmp_path)).run()
    at.switch_page("pages/relevance.py").run()
    assert not at.exception, [e.value for e in at.exception]
    caption = next(c.value for c in at.caption if "on the dashed diagonal" in c.value)
    assert f"each of the {CONSERVATION_CLASSES} classes with the highest logits" in caption
    assert [len(p) for p in passes] == [CONSERVATION_CLASSES]
    top = passes[0]
    target = next(c for c in range(40) if c not in top)
    widget(at.selectbox, "Target class").set_value(target).run()  # a target outside the top logits joins them
    assert not at.exception
    assert passes[1:] == [[target]]
    caption = next(c.value for c in at.caption if "on the dashed diagonal" in c.value)
    assert f"each of the {CONSERVATION_CLASSES} classes with the highest logits (and the target)" in caption
    (scatter,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "relevance = logit" in c.proto.spec]
    assert len(scatter["data"][1]["customdata"]) == CONSERVATION_CLASSES + 1
    assert any(s.value.startswith(f"Maps for class class{target}") for s in at.subheader)
