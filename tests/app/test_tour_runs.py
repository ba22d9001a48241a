"""A tour that names stored runs: they start in the background when the tour starts (the real store and the real
`headscope precompute` subprocess), the tour panel shows how far they are, and the step's view reads the stored
run once it is done instead of asking for Compute."""

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from runs import Store
from tests.app.helpers import APP, TIMEOUT, assert_clean, held_run, shown, stored_run
from ui import state
from ui.stored import alive
from ui.tour_runs import STARTED

TOUR = """title = "Runs"
[[step]]
title = "The model"
view = "model"
text = "First the model."
[step.state]
model = "digits-vit"

[[step]]
title = "Which heads matter"
view = "importance"
text = "Remove one head at a time."
run = "importance"
figure = "Do the scores agree, and which one is right?"
[step.state]
model = "digits-vit"
n = 8
"""


@pytest.fixture
def tour(tmp_path, monkeypatch):
    """A user tour of two steps, the second showing a tiny importance run, with an empty store of its own."""
    monkeypatch.setenv("HEADSCOPE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADSCOPE_STORE", str(tmp_path / "store"))
    (tmp_path / "home" / "tours").mkdir(parents=True)
    path = tmp_path / "home" / "tours" / "runs.toml"
    path.write_text(TOUR)
    return path


def _tour_view(path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/tour.py").run()
    at.selectbox(key="tour_file").set_value(str(path)).run()
    assert_clean(at)
    return at


def _start(path) -> AppTest:
    at = _tour_view(path)
    at.button(key="tour_start").click().run()
    assert_clean(at)
    return at


def _overview(at: AppTest) -> str:
    """The Tour view's list of the runs the steps show, as a reader sees it."""
    return next(shown(m.value) for m in at.markdown if m.value.startswith("**The stored runs the steps show**"))


def _lines(at: AppTest) -> list[str]:
    """The tour panel's run lines as a reader sees them (progress bars' texts, captions, warnings)."""
    bars = [shown(p.proto.text) for p in at.get("progress")]
    return bars + [shown(c.value) for c in at.caption] + [shown(w.value) for w in at.warning]


def _figure(at: AppTest) -> str:
    """The figure the tour panel's button scrolls to ("": no button)."""
    return next(json.loads(c.proto.json)["figure"] for c in at.get("bidi_component") if "tour_keys" in c.proto.id)


def _pid(at: AppTest) -> int:
    _, started = at.session_state[STARTED]
    ((pid, _),) = started.values()
    return pid


def test_a_tours_run_starts_with_the_tour_shows_progress_and_its_step_reads_the_stored_run(tour):
    tour.write_text(TOUR.replace("n = 8", 'n = 8\nablation = "mean"'))  # the run is of the step's options
    listed = _overview(_tour_view(tour))
    store = Store().root.resolve()
    assert (
        "step 2: head importance on digits-vit (8 inputs of digits, ablation mean): starts with the tour (or store it "
        "before the lecture: `headscope precompute --model digits-vit --dataset digits --split test --analyses "
        f"importance --batch-size 32 --store {store} --device cpu --n 8 --ablation mean`)" in listed
    ), listed
    at = _start(tour)
    assert tuple(at.session_state[state.TOUR])[1] == 0
    pid = _pid(at)  # started when the tour started, on step 1
    assert alive(pid)
    need = "Step 2 needs head importance on digits-vit (8 inputs of digits, ablation mean)"
    assert f"{need}: starting" in _lines(at), _lines(at)
    at.button(key="tour_next").click().run()  # the class reaches the step before the run is done
    assert_clean(at)
    assert not any("Press **Compute head importance**" in i.value for i in at.info)
    assert any("being computed in the background" in i.value for i in at.info)
    assert any("this step shows it when it is done" in line for line in _lines(at)), _lines(at)
    assert _figure(at) == ""  # the figure comes with the run: no button that scrolls to nothing
    deadline = time.monotonic() + 240
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(1)
    at.switch_page("pages/importance.py").run()  # the page the browser is on reruns (the panel's fragment asks)
    assert_clean(at)
    (run,) = Store().runs()
    assert run.manifest.state == "done" and run.manifest.n_inputs == 8 and run.manifest.params["ablation"] == "mean"
    assert at.selectbox(key="imp_ablation").value == "mean"
    assert at.toggle(key="imp_use_stored").label.startswith("Show the stored run: 8 inputs of digits")
    assert not any("Press **Compute head importance**" in i.value for i in at.info)
    assert not any(line.startswith(need) for line in _lines(at))  # nothing left to wait for
    assert len(at.get("plotly_chart")) >= 3  # the score grids of the stored run
    assert _figure(at) == "Do the scores agree, and which one is right?"


def test_a_run_already_stored_is_not_started_again(tour, digits_vit):
    with stored_run(digits_vit, "importance", 8):
        assert "step 2: head importance on digits-vit (8 inputs of digits): stored" in _overview(_tour_view(tour))
        at = _start(tour)
        assert not at.session_state[STARTED][1]
        assert not any(line.startswith("Step 2 needs") for line in _lines(at)), _lines(at)


def test_a_run_already_being_computed_is_followed_with_its_progress_not_started_again(tour, digits_vit):
    """A run of the tour's that another process is writing (here run_job in a thread, held after its first chunk
    of 64 of 80 inputs): the panel shows its progress from the store, and the step reads it once it is done."""
    tour.write_text(TOUR.replace("n = 8", "n = 80"))
    with held_run(digits_vit, "importance", 80):  # its first chunk: 64 of 80 inputs
        at = _start(tour)
        assert not at.session_state[STARTED][1]  # nothing started: the run is being computed
        line = "Step 2 needs head importance on digits-vit (80 inputs of digits): 80% (64/80 inputs)"
        assert line in _lines(at), _lines(at)
        at.button(key="tour_next").click().run()
        assert f"{line} in the background; this step shows it when it is done" in _lines(at)
    at.switch_page("pages/importance.py").run()
    assert_clean(at)
    assert at.toggle(key="imp_use_stored").label.startswith("Show the stored run: 80 inputs of digits")


def test_a_run_that_stops_is_named_with_its_reason(tour, monkeypatch):
    from runs.faults import Faults

    tour.write_text(TOUR.replace("n = 8", "n = 80"))
    for name, value in Faults.env(fail_after_chunks=1).items():
        monkeypatch.setenv(name, value)  # the background run fails after its first chunk
    at = _start(tour)
    pid = _pid(at)
    deadline = time.monotonic() + 240
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(1)
    at.run()
    warned = " ".join(shown(w.value) for w in at.warning)
    assert (
        "Step 2 needs head importance on digits-vit (80 inputs of digits), which cannot be computed: it stopped ("
        in warned
    )
    assert "fault injection" in warned and "start the tour again to resume it" in warned, warned


def test_ending_the_tour_stops_the_runs_it_started(tour):
    at = _start(tour)
    pid = _pid(at)
    at.button(key="tour_end").click().run()
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid) and STARTED not in at.session_state


@pytest.mark.parametrize(
    "state, why",
    [
        ('dataset = "prose"', "(8 inputs of prose), which cannot be computed: 'prose' is not a bundled image dataset"),
        ('ablation = "half"', "(8 inputs of digits, ablation half), which cannot be computed: Option 'ablation' got"),
    ],
)
def test_a_tours_run_that_cannot_be_computed_is_named_in_the_panel(tour, state, why):
    tour.write_text(TOUR.replace("n = 8", f"n = 8\n{state}"))
    at = _start(tour)
    assert not at.session_state[STARTED][1]  # nothing started
    warned = " ".join(shown(w.value) for w in at.warning)
    assert f"Step 2 needs head importance on digits-vit {why}" in warned, warned


def test_the_tour_view_names_a_runs_mistakes_literally(tour):
    tour.write_text(
        TOUR.replace('run = "importance"', 'run = "[importnce](http://example.invalid)"')
        + '\n[[step]]\ntitle = "Old style"\nview = "importance"\ntext = "Scores."\n[step.state]\ncompute = 1\n'
    )
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/tour.py").run()
    at.selectbox(key="tour_file").set_value(str(tour)).run()
    assert_clean(at)
    (warning,) = [w.value for w in at.warning]
    assert "](http" not in warning  # the file's text is shown as typed, never as a link
    text = shown(warning)
    assert (
        "step 2 of the file ('Which heads matter'), field 'run': '[importnce](http://example.invalid)' is not a "
        "stored run the importance view shows (one of importance); left out." in text
    ), text
    assert "field 'state.compute': a tour names the stored run its step shows instead" in text, text
