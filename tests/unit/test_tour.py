"""Tour files (ui.tour): the shipped tours are valid, and every kind of mistake is reported by step and field while
the rest of the tour still loads."""

from ui.navigation import RUN_VIEWS
from ui.tour import TOURS_DIR, VIEW_NAMES, load_tour, tour_files, tour_runs
from ui.tour_runs import TourRun

BROKEN = """
title = "Broken on purpose"

[[step]]
title = "Fine"
view = "attention"
text = "A good step."
[step.state]
model = "digits-vit"
head = 1

[[step]]
title = "No text"
view = "attention"

[[step]]
title = "Unknown view"
view = "atention"
text = "Typo in the view."

[[step]]
title = "Bad state"
view = "spectral"
text = "A parameter that does not exist."
[step.state]
temperature = 2

[[step]]
title = "Extra field, still shown"
view = "relevance"
text = "An unknown field is ignored."
colour = "red"
[step.state]
methods = ["rollout", "attnlrp"]
"""


def test_shipped_tours_load_without_problems_and_cover_every_view():
    files = [p for p in tour_files() if p.parent == TOURS_DIR]
    assert files, "HeadScope ships at least one tour"
    for path in files:
        tour = load_tour(path)
        assert not tour.problems, tour.problems
        assert 8 <= len(tour.steps) <= 14
    intro = load_tour(TOURS_DIR / "intro.toml")
    views = {s.view for s in intro.steps}
    assert {"attention", "importance", "relevance", "spectral", "embedding"} <= views <= set(VIEW_NAMES)
    assert all(s.text and s.source and s.prompt for s in intro.steps)


def test_a_broken_tour_reports_each_step_and_field_and_keeps_the_rest(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    tour = load_tour(path)
    assert [s.title for s in tour.steps] == ["Fine", "Extra field, still shown"]
    assert tour.steps[0].state == {"model": "digits-vit", "head": "1"}
    assert tour.steps[1].state == {"methods": "rollout,attnlrp"}
    text = "\n".join(tour.problems)
    assert "step 2 of the file ('No text'), field 'text'" in text  # by the file's number and title: the Tour view
    assert "step 3 of the file ('Unknown view'), field 'view': 'atention'" in text  # numbers the steps it shows
    assert "step 4 of the file ('Bad state'), field 'state.temperature'" in text
    assert "step 5 of the file ('Extra field, still shown'), field 'colour'" in text and len(tour.problems) == 4


def test_a_file_that_is_not_toml_is_reported_with_the_parsers_position(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('title = "unclosed\n[[step]]\n')
    tour = load_tour(path)
    assert tour.steps == [] and "line 1" in tour.problems[0]


def test_user_tours_are_listed_after_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSCOPE_HOME", str(tmp_path))
    (tmp_path / "tours").mkdir()
    (tmp_path / "tours" / "mine.toml").write_text(BROKEN)
    files = tour_files()
    assert files[-1] == tmp_path / "tours" / "mine.toml" and files[0].parent == TOURS_DIR


RUNS = """
title = "Runs"

[[step]]
title = "Scores"
view = "importance"
text = "Head importance."
run = "importance"
[step.state]
model = "digits-vit"
n = 64

[[step]]
title = "Pruning, the same run"
view = "importance"
text = "The same scores."
run = ["importance"]
[step.state]
model = "digits-vit"
n = 64

[[step]]
title = "Maps and their faithfulness"
view = "relevance"
text = "Two runs."
run = ["relevance", "faithfulness"]
[step.state]
model = "shapes-vit"
dataset = "shapes"

[[step]]
title = "A run the view does not show"
view = "spectral"
text = "Wrong view."
run = "importance"
[step.state]
model = "digits-vit"

[[step]]
title = "No model"
view = "importance"
text = "Whose run?"
run = "importance"

[[step]]
title = "Bad n"
view = "importance"
text = "A fraction of an input."
run = "importance"
[step.state]
model = "digits-vit"
n = 2.5

[[step]]
title = "Old style"
view = "importance"
text = "Computed on opening."
[step.state]
model = "digits-vit"
compute = 1

[[step]]
title = "Mean ablation"
view = "importance"
text = "Another run: its heads' outputs are replaced by their mean."
run = "importance"
[step.state]
model = "digits-vit"
n = 64
ablation = "mean"
layer = 1
"""


def test_a_tours_runs_come_from_its_steps_once_each_and_their_mistakes_are_named(tmp_path):
    path = tmp_path / "runs.toml"
    path.write_text(RUNS)
    tour = load_tour(path)
    assert [s.title for s in tour.steps] == [
        "Scores",
        "Pruning, the same run",
        "Maps and their faithfulness",
        "Old style",
        "Mean ablation",
    ]
    assert tour_runs(tour) == {
        TourRun("importance", "digits-vit", "", "", 64): [1, 2],
        TourRun("relevance", "shapes-vit", "shapes", "", None): [3],
        TourRun("faithfulness", "shapes-vit", "shapes", "", None): [3],
        TourRun("importance", "digits-vit", "", "", 64, (("ablation", "mean"),)): [5],
    }
    text = "\n".join(tour.problems)
    assert (
        "step 4 of the file ('A run the view does not show'), field 'run': 'importance' is not a stored run the "
        "spectral view shows (one of spectral)" in text
    )
    assert "step 5 of the file ('No model'), field 'run': the run needs the step's model" in text
    assert "step 6 of the file ('Bad n'), field 'state.n': the run's inputs must be a whole number" in text
    assert "step 7 of the file ('Old style'), field 'state.compute': a tour names the stored run" in text
    assert tour.steps[3].state == {"model": "digits-vit"} and len(tour.problems) == 4


def test_every_analysis_has_the_view_that_shows_its_runs():
    from analysis import UNITS

    assert set(RUN_VIEWS) == set(UNITS) and set(RUN_VIEWS.values()) <= set(VIEW_NAMES)
