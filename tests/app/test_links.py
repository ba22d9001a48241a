"""AppTest: links to a state (ui.links) through app.py: every documented parameter reopens its state, bad values
open the nearest valid state with one message, the URL follows the widgets; the presenter layout; and every step
of the shipped tours opens the state it declares, with Next / Back / End in the tour panel."""

import json
import re

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.app.helpers import APP, TIMEOUT, assert_clean, link_message, shown
from ui import state
from ui.navigation import VIEWS
from ui.params import PARAMS
from ui.tour import TOURS_DIR, load_tour

TITLES = {v.name: v.title for v in VIEWS}
# links that together set every documented parameter, at least one per view
LINKS = [
    ("attention", {"model": "digits-vit", "input": "3", "tab": "Heads of this input", "query": "-1", "matrix": "1"}),
    (
        "attention",
        {
            "model": "minilm",
            "dataset": "prose",
            "input": "5",
            "layer": "1",
            "head": "2",
            "query": "3",
            "tab": "Heads of this input",
        },
    ),
    (
        "attention",
        {
            "model": "digits-vit",
            "tab": "Patterns",
            "n": "16",
            "clusters": "4",
            "pattern_embedding": "pca",
            "clustering": "agglomerative",
            "pattern_map": "pca",
        },
    ),
    (
        "spectral",
        {
            "model": "digits-vit",
            "split": "train",
            "input": "4",
            "tab": "Rank collapse",
            "tau": "2.0",
            "scope": "chosen layers",
            "layers": "1,3",
            "norm": "fro",
            "points": "park_kim",
            "n": "8",
        },
    ),
    (
        "relevance",
        {
            "model": "digits-vit",
            "input": "2",
            "methods": "rollout,attnlrp",
            "target": "3",
            "scale": "shared",
            "opacity": "0.5",
            "under": "0",
            "start": "zero",
            "n": "8",
        },
    ),
    (
        "relevance",
        {"model": "minilm", "input": "1", "methods": "rollout,attnlrp", "read_at": "embedding", "start": "mean"},
    ),
    (
        "embedding",
        {
            "model": "digits-vit",
            "input": "6",
            "where": "mlp_out",
            "block": "2",
            "projection": "pca",
            "proj_layer": "1",
            "baseline": "0",
            "n": "64",
        },
    ),
    (
        "importance",
        {
            "model": "minilm",
            "text": "The court ruled on the appeal.",
            "n": "8",
            "scores": "loss,cosine",
            "quality": "cosine",
            "iterative": "1",
            "seed": "7",
            "class_score": "loss",
            "ablation": "mean",
            "compare": "resample",
        },
    ),
    ("importance", {"model": "digits-vit", "n": "8", "compute": "1"}),
    (
        "spectral",
        {
            "model": "digits-vit",
            "tab": "Activation lab",
            "activation": "GELU",
            "amplitude": "1.5",
            "tones": "5,12",
            "act_layer": "1",
            "mlp_block": "2",
        },
    ),
]


def open_link(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    return at.run()


def url(at: AppTest) -> dict[str, str]:
    return {k: v[0] if isinstance(v, list) else v for k, v in dict(at.query_params).items()}


def test_the_links_cover_every_documented_parameter():
    used = {k for _, params in LINKS for k in params} | {"view", "present"}
    assert used == set(PARAMS)


@pytest.mark.parametrize("view,params", LINKS, ids=[f"{v}-{p['model']}-{p.get('tab', '')}" for v, p in LINKS])
def test_a_link_reopens_its_state_and_the_url_follows(view, params):
    at = open_link({"view": view} | params)
    assert_clean(at)
    assert at.title[0].value == TITLES[view]
    assert not link_message(at), link_message(at)
    assert url(at).items() >= params.items()  # the URL is rewritten from the widgets: the state took
    if view == "attention" and params["model"] == "minilm":
        assert at.session_state[state.MODEL] == "minilm" and state.HEAD in at.session_state
        assert tuple(at.session_state[state.HEAD]) == (1, 2) and at.session_state[state.QUERY] == 3
    again = open_link({"view": view} | url(at))  # the rewritten address opens the same state
    assert_clean(again)
    assert url(again) == url(at)


def test_importance_options_from_a_link_hold_once_the_scores_are_computed():
    at = open_link({"view": "importance", "n": "8", "scores": "loss,gradient", "quality": "true_prob"})
    at.button(key="imp_compute").click().run()
    assert_clean(at)
    assert at.multiselect(key="imp_shown").value == ["loss", "gradient"]
    assert at.selectbox(key="imp_quality").value == "true_prob"


def test_bad_values_open_the_nearest_valid_state_with_one_message():
    at = open_link(
        {
            "view": "spectral",
            "model": "digit-vit",
            "head": "99",
            "layer": "x",
            "input": "100000",
            "tau": "3.3",
            "tab": "Nope",
            "colour": "red",
        }
    )
    assert_clean(at)
    message = link_message(at)
    assert len([w for w in at.warning if w.value.startswith("**The link was opened")]) == 1
    for part in (
        "model='digit-vit': not a built-in model",
        "head=99 does not exist here (0 to 3); opened 3",
        "layer='x' is not a number",
        "input=100000 is out of range",
        "tau=3.3 is out of range; opened 4.0 (the nearest value on the slider)",
        "tab=Nope does not exist",
        "colour: not shown on this view",
    ):
        assert part in message, (part, message)
    assert at.session_state[state.MODEL] == "digits-vit" and tuple(at.session_state[state.HEAD]) == (0, 3)
    assert url(at)["input"] == "359" and url(at)["tau"] == "4.0"
    unknown_view = open_link({"view": "atention"})
    assert_clean(unknown_view)
    assert "view='atention' is not a view" in link_message(unknown_view)


def test_the_url_follows_a_widget_change_and_copy_link_shows_it():
    at = open_link({"view": "spectral", "tab": "Rank collapse"})
    at.radio(key="spectral_rank_norm").set_value("l1inf")
    at.multiselect(key="spectral_whatif").set_value(["attention only"]).run()
    assert url(at)["norm"] == "l1inf"
    code = [c.value for c in at.sidebar.code]
    assert code and "norm=l1inf" in code[0] and "tab=Rank+collapse" in code[0]


def test_presenter_layout_from_the_link():
    at = open_link({"view": "spectral", "present": "1", "tab": "Rank collapse", "n": "8"})
    assert_clean(at)
    assert at.session_state[state.PRESENT] is True and url(at)["present"] == "1"
    layouts = [json.loads(chart.proto.spec)["layout"] for chart in at.get("plotly_chart")]
    for layout in layouts:  # every text at the presenter size where it is drawn (the theme sets each)
        assert layout["font"]["size"] == layout["legend"]["font"]["size"] == 20
        axes = [v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]
        assert axes and all(a["tickfont"]["size"] == a["title"]["font"]["size"] == 20 for a in axes)
        titles = [a["title"].get("text") or "" for a in axes]
        assert all(len(t) <= 24 or "<br>" in t for t in titles), titles  # a long title on two lines
        assert all(n["font"]["size"] == 20 for n in layout.get("annotations", []))
    at.toggle(key="presenter_toggle").set_value(False).run()
    assert "present" not in url(at)
    normal = [json.loads(chart.proto.spec)["layout"] for chart in at.get("plotly_chart")]
    assert [p["height"] for p in layouts] == [round(n["height"] * 1.3) for n in normal]  # room for the larger text
    assert all((n.get("font") or {}).get("size") != 20 for n in normal)


def test_presenter_layout_uses_the_high_contrast_heat_scale():
    def first_colours(at: AppTest) -> set[str]:
        """The first colour of every colour scale in the view's charts and cell pickers."""
        out = set()
        for picker in at.get("bidi_component"):
            first = json.loads(picker.proto.json)["scale"]["colours"][0]
            out.add("#{:02x}{:02x}{:02x}".format(*map(int, first[4:-1].split(","))))
        for chart in at.get("plotly_chart"):
            for trace in json.loads(chart.proto.spec)["data"]:
                scale = trace.get("colorscale") or (trace.get("marker") or {}).get("colorscale")
                if scale:
                    out.add(scale[0][1])
        return out

    viridis, inferno = "#440154", "#000004"  # the first colour of each scale
    assert viridis in first_colours(open_link({"view": "attention"}))
    present = open_link({"view": "attention", "present": "1"})
    assert_clean(present)
    assert inferno in first_colours(present) and viridis not in first_colours(present)


@pytest.mark.parametrize("path", sorted(TOURS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_tour_step_opens_the_state_it_declares(path):
    tour = load_tour(path)
    for k, step in enumerate(tour.steps, 1):
        at = open_link({"view": step.view} | step.state)
        assert_clean(at)
        assert at.title[0].value == TITLES[step.view], k
        assert not link_message(at), (k, link_message(at))
        assert url(at).items() >= step.state.items(), (k, step.state, url(at))


def _tour_keys(at: AppTest) -> int:
    """How many tour key components (ui/tour_keys.js) the page draws."""
    return sum("tour_keys" in c.proto.id for c in at.get("bidi_component"))


def test_tour_panel_next_back_and_end():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/tour.py").run()
    assert_clean(at)
    assert _tour_keys(at) == 1  # loaded before the tour starts: the first PageDown finds them
    at.button(key="tour_start").click().run()
    intro = load_tour(TOURS_DIR / "intro.toml")
    assert at.title[0].value == TITLES[intro.steps[0].view]
    assert any(m.value.startswith(f"#### {intro.steps[0].title}") for m in at.markdown)
    at.button(key="tour_next").click().run()
    assert tuple(at.session_state[state.TOUR])[1] == 1
    assert any(m.value.startswith(f"#### {intro.steps[1].title}") for m in at.markdown)
    assert url(at)["tab"] == intro.steps[1].state["tab"]
    at.button(key="tour_back").click().run()
    assert tuple(at.session_state[state.TOUR])[1] == 0
    at.switch_page("pages/tour.py").run()  # the Tour view while the tour runs: the panel's keys only
    assert_clean(at)
    assert _tour_keys(at) == 1
    at.button(key="tour_end").click().run()
    assert state.TOUR not in at.session_state
    assert not any(m.value.startswith("#### ") for m in at.markdown)  # the panel's step heading is gone


def test_values_a_widget_cannot_take_and_a_text_for_an_image_model_are_named():
    at = open_link({"view": "spectral", "n": "many", "text": "a sentence", "tab": "Rank collapse"})
    assert_clean(at)
    message = link_message(at)
    assert "n='many' is not a valid value" in message, message
    assert "text=… is for text models (this model reads images); ignored." in message, message
    assert url(at)["n"] == "32" and "text" not in url(at)


def test_compute_in_a_link_shows_the_scores_without_a_press():
    at = open_link({"view": "importance", "n": "8", "compute": "1"})
    assert_clean(at)
    assert not any("Press **Compute head importance**" in i.value for i in at.info)
    assert at.get("plotly_chart") and url(at)["compute"] == "1"
    unasked = open_link({"view": "importance", "n": "8", "compute": "maybe"})
    assert "compute='maybe' is not a valid value" in link_message(unasked) and "compute" not in url(unasked)
    assert any("Press **Compute head importance**" in i.value for i in unasked.info)


def test_values_that_slip_through_a_range_check_are_refused_or_moved_to_the_nearest():
    at = open_link(
        {
            "view": "spectral",
            "tab": "Activation lab",
            "amplitude": "nan",
            "tones": "-4,abc",
            "act_layer": "inf",
            "mlp_block": "1e999",
            "input": "\u0663",  # ARABIC-INDIC DIGIT THREE
            "layer": "1.0",
            "head": "2.6",
        }
    )
    assert_clean(at)  # no error box in the lab: the link's tones are refused, the default ones drawn
    message = link_message(at)
    for name, raw in [("amplitude", "nan"), ("tones", "-4,abc"), ("act_layer", "inf"), ("input", "\u0663")]:
        assert f"{name}={raw!r} is not a valid value; kept the default" in message, (name, message)
    assert "mlp_block='1e999' is not a valid value" in message and "head=2.6 does not exist here" in message
    assert "layer" not in message.replace("act_layer", "")  # 1.0 is layer 1
    shown_url = url(at)
    assert shown_url["amplitude"] == "2.0" and shown_url["tones"] == "8" and shown_url["input"] == "0"
    assert (shown_url["layer"], shown_url["head"]) == ("1", "3")
    text_model = open_link({"view": "spectral", "model": "minilm", "points": "park_kim", "tab": "Rank collapse"})
    assert_clean(text_model)
    assert "points: not shown on this view" in link_message(text_model) and "points" not in url(text_model)


def test_link_values_are_shown_literally_in_the_one_message():
    at = open_link(
        {
            "view": "model",
            "tab": "[Your session expired: log in again](http://example.invalid/login)",
            "model": "![p](http://127.0.0.1:9/pixel.png)",
            "input": "<img src=x onerror=alert(1)>",
        }
    )
    assert_clean(at)
    (box,) = [w.value for w in at.warning if w.value.startswith("**The link was opened")]
    assert not re.search(r"(?<!\\)[\[\]()<>!]", box), box  # every bracket escaped: no link, image or HTML
    message = link_message(at)
    assert "tab: not shown on this view" in message
    assert "model='![p](http://127.0.0.1:9/pixel.png)': not a built-in model" in message
    assert "input='<img src=x onerror=alert(1)>' is not a valid value" in message


@pytest.mark.parametrize("model", ["../../etc", "/", "~/../..", "/no/such/folder"])  # refused, existing or not
def test_a_path_outside_the_link_roots_is_refused_and_the_rest_of_the_link_opens(model, tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSCOPE_LINK_ROOTS", str(tmp_path))
    at = open_link({"view": "model", "model": model, "input": "5"})
    assert_clean(at)
    assert f"model={model!r}: " in link_message(at) and "is outside the folders a link may open" in link_message(at)
    assert at.session_state[state.MODEL] == "digits-vit" and url(at)["input"] == "5"


def test_a_dataset_folder_in_a_link_opens_only_inside_the_link_roots(tmp_path, monkeypatch):
    inside, outside = tmp_path / "roots" / "digits", tmp_path / "elsewhere" / "digits"
    for folder in (inside, outside):
        (folder / "3").mkdir(parents=True)
        Image.new("L", (8, 8), 128).save(folder / "3" / "a.png")
    monkeypatch.setenv("HEADSCOPE_LINK_ROOTS", str(tmp_path / "roots"))
    for wanted in (str(outside), str(tmp_path / "elsewhere" / "missing")):  # the same answer, existing or not
        at = open_link({"view": "model", "model": "digits-vit", "dataset": wanted})
        assert_clean(at)
        message = link_message(at)
        assert f"dataset={wanted!r}: " in message and "is outside the folders a link may open" in message
        assert "dataset" not in url(at) or url(at)["dataset"] != wanted
    at = open_link({"view": "model", "model": "digits-vit", "dataset": str(inside)})
    assert_clean(at)
    assert not link_message(at) and url(at)["dataset"] == str(inside)


def test_a_hub_id_or_folder_in_a_link_loads_only_after_a_yes(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from models import BUILTINS, ModelLoadError
    from ui import cache
    from ui.sidebar import LOAD_OTHER

    asked, real = [], cache.get_model  # the models asked for that are not built in

    def get_model(name, labels=None):
        if name in BUILTINS:
            return real(name, labels)
        asked.append(name)
        raise ModelLoadError(f"{name} is not here")

    monkeypatch.setattr(cache, "get_model", get_model)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the hub client's offline mode (HF_HUB_OFFLINE)
    at = open_link({"view": "model", "model": "someone/not-cached-here", "input": "5"})
    assert not at.exception and asked == []  # nothing asked the hub: the view waits for the answer
    assert (
        "This link loads someone/not-cached-here from the Hugging Face hub (not in this machine's cache; this server "
        "is offline (HF_HUB_OFFLINE): it cannot be downloaded)" in shown(at.markdown[0].value)
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # a server that may download: the question says so
    online = open_link({"view": "model", "model": "someone/not-cached-here"})
    assert "(not in this machine's cache; downloaded)" in shown(online.markdown[0].value) and asked == []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    at.button(key="link_model_skip").click().run()
    assert_clean(at)
    assert "model='someone/not-cached-here' was not loaded, as you chose; kept the current model." in link_message(at)
    assert at.session_state[state.MODEL] == "digits-vit" and url(at)["input"] == "5"  # the rest of the link holds

    monkeypatch.setenv("HEADSCOPE_LINK_ROOTS", str(tmp_path))
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "model.safetensors").write_bytes(bytes(2_400_000))
    at = open_link({"view": "model", "model": str(tmp_path / "saved")})
    assert asked == [] and f"the model in the folder {tmp_path / 'saved'} (2 MB)" in shown(at.markdown[0].value)
    at.button(key="link_model_load").click().run()
    assert (
        not at.exception
        and at.session_state[state.MODEL] == LOAD_OTHER
        and at.session_state[state.CUSTOM_MODEL] == str(tmp_path / "saved")
    )
    assert asked == [str(tmp_path / "saved")]


def test_a_links_model_question_is_in_the_presenter_layout():
    from ui.present import PRESENTER_CSS

    at = open_link({"view": "model", "model": "someone/not-cached-here", "present": "1"})
    assert at.button(key="link_model_load") and any(h.proto.body == PRESENTER_CSS for h in at.get("html"))


def test_a_hub_model_in_the_local_cache_is_asked_for_with_its_size(tmp_path, monkeypatch):
    """The hub is never asked for a size: a cached model's files give it (the cache's own layout: refs/main names
    the snapshot, whose files link to blobs)."""
    import huggingface_hub.constants

    repo = tmp_path / "models--someone--cached-here"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "blobs").mkdir()
    (repo / "blobs" / "weights").write_bytes(bytes(3_100_000))
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").symlink_to(repo / "blobs" / "weights")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    at = open_link({"view": "model", "model": "someone/cached-here"})
    assert not at.exception
    assert (
        "This link loads someone/cached-here from the Hugging Face hub (3 MB, already in this machine's cache)"
        in shown(at.markdown[0].value)
    )


def test_the_tour_view_lists_a_broken_user_tours_problems(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSCOPE_HOME", str(tmp_path))
    (tmp_path / "tours").mkdir()
    (tmp_path / "tours" / "mine.toml").write_text(
        'title = "Mine"\n[[step]]\ntitle = "Good"\nview = "model"\ntext = "Fine."\n'
        '[[step]]\ntitle = "Typo"\nview = "atention"\ntext = "Bad view."\n'
    )
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/tour.py").run()
    at.selectbox(key="tour_file").set_value(str(tmp_path / "tours" / "mine.toml")).run()
    assert_clean(at)
    warning = " ".join(shown(w.value) for w in at.warning)
    assert (
        "mine.toml has 1 problem(s)" in warning and "step 2 of the file ('Typo'), field 'view': 'atention'" in warning
    ), warning
    assert any("**Good**" in m.value for m in at.markdown) and not any("**Typo**" in m.value for m in at.markdown)
    assert "Mine (1 step)" in at.selectbox(key="tour_file").options
