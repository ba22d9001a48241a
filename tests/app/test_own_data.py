"""AppTest: the sidebar's Dataset picker and the dataset-level views on the user's own folders and tables."""

import pandas as pd
import pytest

from data import load_dataset
from tests.app.helpers import assert_clean, open_view, shown, widget
from tests.conftest import write_digit_folder
from ui import state
from ui.input_picker import OPEN_DATASET
from ui.text import literal


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """40 held-out digits as root/<digit>/<index>.png, plus one corrupt file."""
    return write_digit_folder(tmp_path_factory.mktemp("digit_folder"), 40)


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat_folder")
    ds = load_dataset("digits", "test")
    for i in range(12):
        ds.inputs[i].save(root / f"scan_{i:02d}.png")
    return root


def _open(at, path: str, model: str = "digits-vit"):
    at.sidebar.selectbox(key=f"{state.DATASET}_{model}").select(OPEN_DATASET).run()
    at.sidebar.text_input(key=state.CUSTOM_DATASET).input(str(path)).run()
    return at


def test_folder_through_the_sidebar_drives_input_and_views(digit_folder):
    at = _open(open_view("pages/model.py"), digit_folder)
    assert_clean(at)
    assert at.sidebar.selectbox(key=f"{state.DATASET}_digits-vit").value == str(digit_folder)  # now a recent choice
    assert any("40 image inputs" in c.value and "10 of 10 dataset classes" in c.value for c in at.sidebar.caption)
    assert any("1 file(s)" in w.value for w in at.sidebar.warning)  # the corrupt file, named in an expander
    assert "broken.png" in at.sidebar.expander[-1].dataframe[0].value["file"].iloc[0]
    assert any(md.value.startswith("**Prediction:**") for md in at.markdown)
    # browse by class and by file name
    widget(at.sidebar.radio, "Browse").set_value("class").run()
    widget(at.sidebar.selectbox, "Class").set_value(7).run()
    assert_clean(at)
    captions = [c for el in at.sidebar.get("image") for c in el.captions]
    assert captions and shown(captions[0]).startswith("7/") and "label 7" in captions[0]  # a file name: escaped
    widget(at.sidebar.radio, "Browse").set_value("name").run()
    widget(at.sidebar.text_input, "File name contains").input("017").run()
    files = widget(at.sidebar.selectbox, "File")
    assert files.options == [f"{load_dataset('digits', 'test').labels[17]}/017.png"]
    # the Model view evaluates the folder on request
    at.button(key="model_evaluate").click().run()
    assert_clean(at)
    assert at.metric[0].label.startswith("40 labelled inputs of") and float(at.metric[0].value.rstrip("%")) >= 90
    # the source is remembered for next time
    assert str(digit_folder) in [r["source"] for r in state.recent_datasets()]


def test_importance_on_a_folder_dataset(digit_folder):
    at = _open(open_view("pages/importance.py"), digit_folder)
    at.number_input(key="imp_n_image").set_value(12).run()
    at.button(key="imp_compute").click().run()
    assert_clean(at)
    assert any("a seeded sample of 12 of 40" in c.value for c in at.caption)
    assert any(s.value == "Per class" for s in at.subheader)
    table = at.get("plotly_chart")
    assert len(table) >= 4  # the score grids, partial pruning, agreement, curves and per class


def test_relevance_faithfulness_on_a_folder_dataset(digit_folder):
    at = _open(open_view("pages/relevance.py"), digit_folder)
    at.number_input(key="rel_n_image").set_value(4)
    widget(at.multiselect, "Methods to score").set_value(["rollout", "attnlrp"])
    at.get("form_submit_button")[0].click()
    at.run()
    assert_clean(at)
    assert any(md.value.startswith("**Scores over 4 inputs of") for md in at.markdown)
    assert any("No object masks" in c.value for c in at.caption)


def test_unlabelled_folder_explains_what_is_missing(flat_folder):
    at = _open(open_view("pages/importance.py"), flat_folder)
    assert any("unlabelled dataset" in c.value for c in at.sidebar.caption)
    assert widget(at.sidebar.radio, "Browse").options == ["by index", "by file name"]
    at.number_input(key="imp_n_image").set_value(4).run()
    at.button(key="imp_compute").click().run()
    assert_clean(at)
    infos = " ".join(i.value for i in at.info)
    assert "has no labels" in infos and "one sub-folder per class" in infos
    at.switch_page("pages/embedding.py").run()
    assert_clean(at)
    assert any("has no labels" in i.value and "own prediction" in i.value for i in at.info)
    assert any("12 of them have no label" in c.value and "scored against its prediction" in c.value for c in at.caption)


def test_bad_source_keeps_the_bundled_set_with_a_clear_error(tmp_path):
    at = _open(open_view("pages/model.py"), tmp_path / "nowhere")
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert errors and "no such file or folder" in errors[0] and "use digits instead" in errors[0]
    assert float(at.metric[0].value.rstrip("%")) >= 97  # the views go on with the bundled set
    pd.DataFrame({"text": ["a sentence of prose"]}).to_csv(tmp_path / "texts.csv", index=False)
    at.sidebar.text_input(key=state.CUSTOM_DATASET).input(str(tmp_path / "texts.csv")).run()
    assert any("holds texts, but digits-vit reads images" in shown(e.value) for e in at.sidebar.error)


def test_text_table_on_minilm(tmp_path):
    prose = load_dataset("prose", "test")
    texts = ["Insulin *lowers* $glucose$: see [a link](http://x.org) <b>now</b> :smile:", *prose.inputs[1:10]]
    pd.DataFrame({"sentence": texts, "label": [prose.class_names[y] for y in prose.labels[:10]]}).to_json(
        tmp_path / "p.jsonl", orient="records", lines=True
    )
    at = open_view("pages/attention.py", "minilm")
    choices = at.sidebar.radio(key=f"{state.SOURCE}_text").options
    at = _open(at, tmp_path / "p.jsonl", "minilm")
    assert_clean(at)
    assert any("10 text inputs" in c.value for c in at.sidebar.caption)
    # the Input radio keeps its labels (a label naming the dataset made a new, unselected widget on opening one)
    radio = at.sidebar.radio(key=f"{state.SOURCE}_text")
    assert radio.options == choices and radio.value == "dataset"
    # the dataset's text is shown under the picker, character for character (no Markdown)
    assert any(c.value == literal(texts[0]) for c in at.sidebar.caption)
    at.switch_page("pages/model.py").run()
    at.button(key="model_evaluate").click().run()
    assert_clean(at)
    assert at.metric[0].label.startswith("10 labelled inputs")


def test_re_read_picks_up_new_files(tmp_path):
    ds = load_dataset("digits", "test")
    for i in range(5):
        ds.inputs[i].save(tmp_path / f"{i}.png")
    at = _open(open_view("pages/model.py"), tmp_path)
    assert any("5 image inputs" in c.value for c in at.sidebar.caption)
    ds.inputs[5].save(tmp_path / "5.png")
    at.run()
    assert any("5 image inputs" in c.value for c in at.sidebar.caption)  # the listing is kept
    at.sidebar.button(key="dataset_reread").click().run()
    assert not at.exception
    assert any("6 image inputs" in c.value for c in at.sidebar.caption)


def test_a_dataset_the_model_does_not_recognise_gets_a_warning_in_every_view(tmp_path):
    """The same digits enlarged to 32x32 with nearest-neighbour blocks: digits-vit reads them near chance (it was
    trained on 8x8 scans enlarged smoothly), and the sidebar (in every view) says so with the likely reasons; the
    8x8 originals get no such warning."""
    from PIL import Image

    ds = load_dataset("digits", "test")
    for root, size in ((tmp_path / "blocky", 32), (tmp_path / "scans", 8)):
        for i in range(40):
            (root / str(ds.labels[i])).mkdir(parents=True, exist_ok=True)
            ds.inputs[i].resize((size, size), Image.Resampling.NEAREST).save(root / str(ds.labels[i]) / f"{i}.png")
    at = _open(open_view("pages/attention.py"), tmp_path / "blocky")
    assert_clean(at)
    [warning] = [w.value for w in at.sidebar.warning if "chance 10%" in w.value]
    assert warning.startswith("digits-vit gets ") and "nearest-neighbour" in warning
    at.switch_page("pages/importance.py").run()
    assert any("chance 10%" in w.value for w in at.sidebar.warning)
    at = _open(open_view("pages/model.py"), tmp_path / "scans")
    assert_clean(at)
    assert not any("chance" in w.value for w in at.sidebar.warning)


def test_columns_are_chosen_in_the_sidebar(tmp_path):
    """A table whose columns have no usual names: the image column is found by its file names, the label column
    is chosen in the sidebar; a column that cannot be read gives one error and the detected columns stay."""
    ds = load_dataset("digits", "test")
    (tmp_path / "scans").mkdir()
    for i in range(20):
        ds.inputs[i].save(tmp_path / "scans" / f"{i}.png")
    pd.DataFrame({"Digit": ds.labels[:20], "Scan": [f"scans/{i}.png" for i in range(20)], "note": ["x"] * 20}).to_csv(
        tmp_path / "t.csv", index=False
    )
    at = _open(open_view("pages/model.py"), tmp_path / "t.csv")
    assert_clean(at)
    assert widget(at.sidebar.selectbox, "Image column").value == "Scan"
    assert widget(at.sidebar.selectbox, "Label column").value == "(no labels)"
    assert any("unlabelled dataset" in c.value for c in at.sidebar.caption)
    widget(at.sidebar.selectbox, "Label column").set_value("Digit").run()
    assert_clean(at)
    assert any("20 image inputs" in c.value and "10 of 10 dataset classes" in c.value for c in at.sidebar.caption)
    widget(at.sidebar.selectbox, "Image column").set_value("note").run()
    [error] = [e.value for e in at.sidebar.error]
    assert "no usable rows" in error and error.endswith("The detected columns are used.")
    assert any("20 image inputs" in c.value for c in at.sidebar.caption)


def test_how_a_folder_was_read_is_said_and_odd_names_are_text(tmp_path):
    """vehicles/{bus,train}: the picker says train is a class; a symbolic link loop is listed; a latin-1 file name
    and a name with Markdown in it are shown as text when they are the current input."""
    import os

    ds = load_dataset("digits", "test")
    for cls in ("bus", "train"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            ds.inputs[i].save(tmp_path / cls / f"{i}.png")
    ds.inputs[3].save(tmp_path / "bus" / os.fsdecode(b"caf\xe9.png"))
    ds.inputs[4].save(tmp_path / "train" / "**bold** [x](y).png")
    (tmp_path / "bus" / "loop").symlink_to(tmp_path / "bus")  # ln -s . bus/loop: listed, not a traceback
    at = _open(open_view("pages/model.py"), tmp_path)
    assert_clean(at)
    assert any("1 file(s) or row(s)" in w.value for w in at.sidebar.warning)
    assert any(c.value.startswith("Read as: class folders bus, train") for c in at.sidebar.caption)
    widget(at.sidebar.radio, "Browse").set_value("name").run()
    for typed, name in (("caf", "bus/caf\\xe9.png"), ("bold", "train/**bold** [x](y).png")):
        widget(at.sidebar.text_input, "File name contains").input(typed).run()
        assert_clean(at)
        captions = [c for el in at.sidebar.get("image") for c in el.captions]
        assert shown(captions[0]).startswith(name) and captions[0].startswith(literal(name))  # as text
