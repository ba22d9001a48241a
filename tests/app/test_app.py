"""AppTest: the router, every view on both built-in models, and the sidebar's error paths."""

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from data import load_dataset
from tests.app.helpers import APP, TIMEOUT, open_view, shown
from ui.navigation import available_views


def _app(model: str = "digits-vit") -> AppTest:
    return open_view(None, model)


def _errors(at) -> list[str]:
    return [e.value for e in at.error] + [str(e.value) for e in at.exception]


@pytest.mark.parametrize("model", ["digits-vit", "minilm"])
@pytest.mark.parametrize("view", [v.file for v in available_views()])
def test_every_view_runs_on_both_builtin_models(model, view):
    at = _app(model)
    at.switch_page(f"pages/{view}").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title and at.title[0].value


def test_a_fresh_server_shows_home_before_the_heavy_imports(monkeypatch):
    """The first page of a fresh server is Home at once, its sidebar saying what it waits for; the app reruns
    into the full sidebar when the imports are done, and any other view waits for them."""
    from ui import startup

    started = []
    monkeypatch.setattr(startup, "ready", lambda: False)
    monkeypatch.setattr(startup, "start", lambda: started.append(True))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and started
    assert at.title[0].value == "HeadScope"
    assert "Loading PyTorch" in " ".join(c.value for c in at.sidebar.caption)
    assert not at.sidebar.selectbox  # no model picker yet
    monkeypatch.setattr(startup, "ready", lambda: True)
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox[0].label == "Model" and at.title[0].value == "HeadScope"


def test_what_comes_before_a_fresh_servers_first_status_imports_nothing_heavy():
    """app.py's imports, and the route a fresh server's /<view> takes through it, load neither numpy, pandas nor
    torch: their seconds come after the loading status is on screen."""
    code = (
        "import sys, ast, streamlit\n"
        f"tree = ast.parse(open({APP!r}).read())\n"
        "imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]\n"
        "exec(compile(ast.Module(imports, []), 'app', 'exec'))\n"
        "import ui.navigation, ui.state\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(APP).parent)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_home_lists_views():
    at = _app()
    assert at.title[0].value == "HeadScope"
    assert "pick a model and an input" in " ".join(m.value for m in at.markdown)


def test_model_view_shows_accuracy_and_prediction(digits_vit):
    at = _app("digits-vit")
    at.switch_page("pages/model.py").run()
    acc = float(at.metric[0].value.rstrip("%"))
    assert acc >= 97.0
    assert any("Prediction:" in m.value for m in at.markdown)
    ds = load_dataset("digits", "test")
    for idx in (7, 11):
        at.sidebar.number_input[0].set_value(idx).run()
        assert not at.exception
        pred = int(digits_vit.logits(digits_vit.prepare([ds.inputs[idx]])).argmax())
        line = next(m.value for m in at.markdown if "Prediction:" in m.value)
        assert line.startswith(f"**Prediction:** {pred} (")


def test_unknown_model_id_shows_clear_error():
    at = _app()
    at.sidebar.selectbox[0].select("Load a model from a folder or hub id…").run()
    at.sidebar.text_input[0].input("no-such-org/no-such-model").run()
    errors = _errors(at)
    assert not at.exception
    assert errors and "Tried" in errors[0] and "Supported" in errors[0]


def test_loading_a_saved_folder_from_the_sidebar(tiny_vit_dir):
    at = _app()
    at.sidebar.selectbox[0].select("Load a model from a folder or hub id…").run()
    at.sidebar.text_input[0].input(str(tiny_vit_dir)).run()
    assert not at.exception and not at.error
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error
    assert "ViTForImageClassification" in list(at.table[0].value["value"])
    # digits' classes are not the folder's: accuracy cannot be measured, and no warning calls 360 inputs too few
    assert any("cannot be measured" in i.value for i in at.info)
    assert not [w.value for w in at.warning if "too few" in w.value]


def test_text_too_long_is_truncated_with_a_warning():
    at = _app("minilm")
    at.sidebar.radio[0].set_value("text").run()
    at.sidebar.text_area(key="input_text").input("lorem ipsum " * 300).run()
    assert not at.exception
    assert any("truncated" in w.value for w in at.sidebar.warning)


def test_empty_text_gives_clear_error():
    at = _app("minilm")
    at.sidebar.radio[0].set_value("text").run()
    at.sidebar.text_area(key="input_text").input("   ").run()
    assert not at.exception
    assert any("empty" in e for e in _errors(at))
    at.switch_page("pages/attention.py").run()  # the view says what to do, not "pick a model and an input"
    assert [i.value for i in at.main.info] == [
        "This input cannot be analysed: pick or type another one. The sidebar says why."
    ]


def test_label_editor_changes_classes_and_refuses_bad_sets():
    at = _app("minilm")
    at.sidebar.text_area(key="labels_minilm").input("cooking\nastronomy").run()
    at.sidebar.button(key="apply_labels_minilm").click().run()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert "2: cooking, astronomy" in " ".join(at.table[0].value["value"])
    at.sidebar.text_area(key="labels_minilm").input("same\nsame").run()
    at.sidebar.button(key="apply_labels_minilm").click().run()
    assert any("distinct" in e for e in _errors(at))


def test_runs_view_lists_shows_and_deletes_a_stored_run(digits_vit):
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    run = run_job(digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "attention", 40, batch_size=16), Store())
    at = _app()
    at.switch_page("pages/stored_runs.py").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert run.root.name in list(table["key"]) and "done" in list(table["state"])
    at.session_state["runs_table"] = {"selection": {"rows": [list(table["key"]).index(run.root.name)], "columns": []}}
    at.run()
    assert not at.exception
    assert any(s.value.startswith("attention of digits-vit on digits") for s in at.subheader)
    at.checkbox(key="runs_delete_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert run.root.name not in list(Store().index()["key"])


def test_the_app_lists_the_runs_precompute_wrote_from_another_folder(tmp_path, monkeypatch, capsys):
    """With the default settings (no HEADSCOPE_STORE), `headscope precompute` in one folder and the app started in
    another share $HEADSCOPE_HOME/runs; the app's folder's ./headscope-runs (earlier versions' store) is listed
    too, and the Runs view says so."""
    import headscope

    monkeypatch.delenv("HEADSCOPE_STORE")
    monkeypatch.setenv("HEADSCOPE_HOME", str(tmp_path / "home"))
    keys = []
    for folder, store in (("cli", []), ("app", ["--store", "headscope-runs", "--analyses", "attention"])):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        args = ["precompute", "--model", "digits-vit", "--dataset", "digits", "--n", "8", *store]
        assert headscope.main(args) == 0
        keys.append(capsys.readouterr().out.split()[0])  # the run's key, first on its line
    at = _app()
    at.switch_page("pages/stored_runs.py").run()
    assert not at.exception and not at.error
    assert sorted(at.dataframe[0].value["key"]) == sorted(keys)
    assert [i.value for i in at.info] == [
        f"Also listed: the runs in **{tmp_path / 'app' / 'headscope-runs'}**, this folder's `headscope-runs` (earlier "
        f"versions' store). Move them into {tmp_path / 'home' / 'runs'} to see them from any folder."
    ]


def test_model_view_uses_a_stored_predictions_run_and_lists_the_worst_inputs(digits_vit):
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    run = run_job(
        digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "predictions", None, batch_size=32), Store()
    )
    at = _app()
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error
    assert "stored run: 360 inputs of digits (test)" in at.toggle(key="model_use_stored").label
    probs = digits_vit.logits(digits_vit.prepare(ds.inputs)).softmax(-1).numpy()
    assert at.metric[0].value == f"{(probs.argmax(-1) == ds.labels).mean():.1%}"
    worst = next(d.value for d in at.dataframe if "p(label)" in d.value.columns)
    p_true = probs[range(len(ds)), ds.labels]
    assert int(worst["dataset row"].iloc[0]) == int(p_true.argmin())
    Store().delete(run.root.name)


def test_streamlit_config_turns_off_the_watcher_and_telemetry():
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["fileWatcherType"] == "none" and cfg["browser"]["gatherUsageStats"] is False


def test_an_option_a_unit_refuses_is_one_error_naming_it():
    """ui.cache.sample_run checks the options before computing: a refused one is one st.error, no traceback."""

    def script():
        import streamlit as st

        from data import load_dataset
        from models import load_model
        from ui import cache

        model, ds = load_model("digits-vit"), load_dataset("digits")
        options = (("methods", ("rollout",)), ("read_at", "words"))
        cache.sample_run("relevance", "digits-vit", ds.key, 8, options, model, ds)
        st.write("computed")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Relevance: Option 'read_at' applies to text models only; digits-vit reads images."
    ]
    assert not at.markdown  # the view stopped there


def test_a_damaged_stored_run_is_named_and_not_used(digits_vit):
    """A stored run whose files no longer match their checksums: the view says so and evaluates as if there were
    none (no toggle for it), instead of showing wrong numbers or raising."""
    from tests.app.helpers import stored_run

    with stored_run(digits_vit, "predictions", None) as run:
        path = run.root / "arrays" / "true_prob.npy"
        raw = bytearray(path.read_bytes())
        raw[-3] ^= 0xFF
        path.write_bytes(bytes(raw))
        at = open_view("pages/model.py")
        assert not at.exception
        assert any(f"run {run.root.name} is damaged" in w.value and "true_prob.npy" in w.value for w in at.warning)
        assert not [t for t in at.toggle if t.key == "model_use_stored"]


def test_the_tour_view_names_the_users_tour_folder():
    """Own tours go in $HEADSCOPE_HOME/tours: the Tour view names that folder, not a fixed ~/.headscope."""
    import os

    at = open_view("pages/tour.py")
    assert not at.exception
    assert any(f"{os.environ['HEADSCOPE_HOME']}/tours" in shown(c.value) for c in at.caption)


def test_a_progress_bar_says_the_time_left():
    from ui.cache import time_left

    assert [time_left(s) for s in (0.2, 42.4, 150, 7200)] == ["1 s", "42 s", "2 min", "2.0 h"]
