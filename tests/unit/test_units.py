"""The analysis units: one registry, validated options, and one compute path (a view's sample run = the stored
run of the same model, dataset, n and options)."""

from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

from analysis import UNITS
from analysis.units import RunOptions
from data import load_dataset
from runs import Store, sample
from runs.jobs import run_job
from runs.plan import manifest_for

FAST = {"faithfulness": {"methods": ["rollout"], "steps": 4}, "relevance": {"methods": ["rollout", "attnlrp"]}}


@pytest.fixture(scope="module")
def partly_unlabelled():
    """digits' test split with every third input's label removed (a dataset the model only partly knows)."""
    ds = load_dataset("digits", "test")
    labels = np.asarray(ds.labels).copy()
    labels[::3] = -1
    return replace(ds, labels=labels, key=ds.key + "|every-third-unlabelled")


def test_the_registry_lists_every_analysis_with_its_options():
    assert list(UNITS) == [
        "predictions",
        "importance",
        "relevance",
        "attention",
        "faithfulness",
        "spectral",
        "embedding",
        "direct_logit_attribution",
        "composition",
        "head_types",
        "patching",
    ]
    for name, unit in UNITS.items():
        assert unit.name == name and unit.description
        assert issubclass(unit.Options, RunOptions)
        defaults = unit.Options.make()
        assert defaults.batch_size == 32
        assert all(f.metadata["doc"] for f in unit.Options.fields()), name
        with pytest.raises(FrozenInstanceError):
            defaults.batch_size = 8  # type: ignore[misc]


def test_options_say_which_option_is_wrong_and_what_it_allows():
    options = UNITS["importance"].Options
    with pytest.raises(TypeError, match=r"Unknown option 'metricz' for importance: valid options are batch_size"):
        options.make(metricz=["loss"])
    with pytest.raises(ValueError, match=r"'metrics' got 'los': choose from accuracy, loss, true_prob, cosine"):
        options.make(metrics=["loss", "los"])
    with pytest.raises(TypeError, match="'metrics' takes a list"):
        options.make(metrics="loss")
    with pytest.raises(ValueError, match="'batch_size' got 0: allowed >= 1"):
        options.make(batch_size=0)
    with pytest.raises(TypeError, match="'batch_size' takes int"):
        options.make(batch_size=True)
    with pytest.raises(ValueError, match="'steps' got 999: allowed 1 to 256"):
        UNITS["faithfulness"].Options(steps=999)  # made directly: validated too
    assert options.make(metrics=["loss"]).metrics == ("loss",)  # a list becomes a tuple (hashable, frozen)


def test_options_are_checked_against_the_model(digits_vit, minilm):
    with pytest.raises(ValueError, match="'metrics' got \\['cosine'\\]: digits-vit allows accuracy, loss, true_prob"):
        UNITS["importance"].resolve(digits_vit, UNITS["importance"].Options.make(metrics=["cosine"]))
    with pytest.raises(ValueError, match="'read_at' applies to text models only"):
        UNITS["relevance"].resolve(digits_vit, UNITS["relevance"].Options.make(read_at="words"))
    with pytest.raises(ValueError, match="'insertion_start' got 'blur': text models allow zero, mean"):
        UNITS["faithfulness"].resolve(minilm, UNITS["faithfulness"].Options.make(insertion_start="blur"))
    resolved = UNITS["relevance"].resolve(minilm, UNITS["relevance"].Options.make())
    assert resolved.read_at == "words"
    assert UNITS["importance"].resolve(minilm, UNITS["importance"].Options.make()).metrics[-1] == "cosine"


def test_explain_refuses_an_option_the_method_does_not_have(digits_vit):
    from analysis.relevance import explain

    batch = digits_vit.prepare(load_dataset("digits", "test").inputs[:2])
    with pytest.raises(TypeError, match="Unknown option 'n_stpes' for integrated_gradients: valid options are n_steps"):
        explain(digits_vit, batch, "integrated_gradients", n_stpes=3)
    with pytest.raises(TypeError, match="for rollout: valid options are none"):
        explain(digits_vit, batch, "rollout", read_at="words")
    a = explain(digits_vit, batch, "integrated_gradients", n_steps=2)
    b = explain(digits_vit, batch, "integrated_gradients", n_steps=16)
    assert not np.allclose(a, b)  # the option reaches captum


@pytest.mark.parametrize("analysis", [pytest.param(a, marks=pytest.mark.slow) if a == "patching" else a for a in UNITS])
def test_a_sample_run_is_the_stored_run(analysis, digits_vit, partly_unlabelled, tmp_path):
    """runs.sample (what a view shows) and a stored run of the same model, dataset, n and options: the same
    arrays, names and shapes, equal values; on a dataset whose model labels are partly unknown."""
    options = {"batch_size": 8} | FAST.get(analysis, {})
    ds = partly_unlabelled
    memory = sample(analysis, digits_vit, ds, 24, **options)
    m = manifest_for(digits_vit, "digits-vit", ds, analysis, 24, 16, **options)
    stored = run_job(digits_vit, ds, m, Store(tmp_path))
    assert memory.manifest.key == stored.manifest.key
    got, want = memory.arrays(), stored.arrays()
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].shape == want[k].shape, k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=k)
    unknown = np.asarray(ds.labels)[np.asarray(want["row"])] < 0
    assert unknown.any() and np.array_equal(np.asarray(want["label"]) < 0, unknown)  # unlabelled rows are in it
    for name, table in stored.tables().items():
        assert table.equals(memory.tables()[name]) or np.allclose(
            table.select_dtypes("number"), memory.tables()[name].select_dtypes("number"), equal_nan=True
        ), name


def test_class_embedding_scores_unlabelled_inputs_against_the_prediction(digits_vit, partly_unlabelled):
    """The one rule: an input without a label the model knows is scored against the model's own prediction."""
    run = sample("embedding", digits_vit, partly_unlabelled, 24, batch_size=8)
    a = run.arrays()
    unknown = a["label"] < 0
    assert unknown.any() and (~unknown).any()
    inputs = [partly_unlabelled.inputs[int(r)] for r in a["row"]]
    predicted = digits_vit.logits(digits_vit.prepare(inputs)).argmax(-1).numpy()
    assert np.array_equal(a["target"][unknown], predicted[unknown])
    assert np.array_equal(a["target"][~unknown], a["label"][~unknown])


def test_sample_refuses_bad_options_before_computing(digits_vit):
    with pytest.raises(TypeError, match="Unknown option 'method' for relevance"):
        sample("relevance", digits_vit, "digits", 8, method=["rollout"])
    with pytest.raises(ValueError, match="Unknown analysis 'relevanse'"):
        sample("relevanse", digits_vit, "digits", 8)


def test_the_toy_analysis_of_the_architecture_page_runs():
    """docs/architecture.md shows how to add an analysis; its code is run here (and the toy unit removed after)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    code = text.split("```python\nfrom dataclasses import dataclass", 1)[1].split("```", 1)[0]
    scope: dict = {}
    try:
        exec("from dataclasses import dataclass" + code, scope)
        norm = scope["run"].arrays()["norm"]
        assert norm.shape == (16, 5) and np.isfinite(norm).all() and (norm > 0).all()
        assert list(scope["run"].tables()["per_layer"]["layer"]) == [0, 1, 2, 3, 4]
        with pytest.raises(ValueError, match="'order' got 3: choose from 1, 2"):
            scope["sample"]("token_norms", "digits-vit", "digits", 4, order=3)
    finally:
        UNITS.pop("token_norms", None)


def test_each_units_arrays_against_a_direct_computation(digits_vit, partly_unlabelled):
    """Known answers for the units the run-equals-analysis tests of test_runs.py do not cover: predictions
    (softmax of one forward), attention's pattern vectors and faithfulness's kept maps (explain's)."""
    import torch

    from analysis.attention import head_statistics
    from analysis.patterns import pattern_vectors
    from analysis.relevance import explain

    ds = partly_unlabelled
    rows = ds.sample_rows(12)
    batch = digits_vit.prepare([ds.inputs[int(r)] for r in rows])
    with torch.no_grad():
        trace = digits_vit.run(batch, capture=True)
    probs = torch.softmax(trace.logits, -1).numpy()
    labels = np.asarray(ds.labels)[rows]

    wrong = replace(ds, labels=np.where(ds.labels >= 0, (ds.labels + 1) % 10, -1), key=ds.key + "|shifted")
    p = sample("predictions", digits_vit, wrong, 12, top_k=3).arrays()  # labels the model mostly gets wrong
    with torch.no_grad():
        probs = torch.softmax(digits_vit.logits(digits_vit.prepare([ds.inputs[int(r)] for r in p["row"]])), -1).numpy()
    assert np.array_equal(p["top_classes"], np.argsort(-probs, 1)[:, :3])
    labels = np.asarray(wrong.labels)[p["row"]]
    known = labels >= 0
    np.testing.assert_allclose(p["true_prob"][known], probs[known, labels[known]], rtol=1e-5)
    assert np.isnan(p["true_prob"][~known]).all() and np.isnan(p["loss"][~known]).all()
    np.testing.assert_allclose(p["loss"][known], -np.log(probs[known, labels[known]]), rtol=1e-5)

    a = sample("attention", digits_vit, ds, 12, patterns=True).arrays()
    spec = digits_vit.spec
    want = pattern_vectors(trace.attentions, spec.grid, spec.n_prefix, trace.token_mask)
    np.testing.assert_allclose(a["vectors"], want, atol=1e-6)
    stats = head_statistics(trace.attentions, spec.grid, spec.n_prefix, spec.patch_size, trace.token_mask)
    np.testing.assert_allclose(a["entropy"], stats["entropy"], atol=1e-5)
    assert "vectors" not in sample("attention", digits_vit, ds, 12).arrays()

    f = sample("faithfulness", digits_vit, ds, 12, methods=["rollout"], steps=2, maps=True).arrays()
    np.testing.assert_allclose(f["map__rollout"], explain(digits_vit, batch, "rollout"), atol=1e-6)
    assert f["positive__rollout"].shape == (12, 10) and f["deletion__random"].shape == (12, 3)
