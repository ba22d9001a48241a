"""Sessions that share a model cannot change what each other computes: many analyses on one model object at
once, from several threads (as a Streamlit server's sessions call the cached model), each give exactly what they
give alone, and none raises. The calls mix every kind of state a forward can have: LRP rules on the modules, the
word-embedding read of text relevance, the float64 pass of Chefer's map, temperature and what-if hooks, gates."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from analysis.conservation import conservation_split
from analysis.embedding import class_projection
from analysis.faithfulness import per_input_scores
from analysis.importance import head_scores, make_sample
from analysis.relevance import available_methods, explain
from analysis.spectral import model_activation, rank_collapse_whatif, spectral_metrics
from data import load_dataset

FAST = {"integrated_gradients": {"n_steps": 4}, "gradient_shap": {"n_samples": 2}, "smoothgrad": {"nt_samples": 2}}
ROUNDS = 2  # every call runs this many times in the concurrent mix


def _calls(model, ds) -> dict:
    """name -> a function of no arguments returning numpy arrays: the analyses a class's sessions might run."""
    batch = model.prepare(list(ds.inputs[:3]))
    text = model.spec.modality == "text"
    calls = {
        f"explain/{m}": (lambda m=m: explain(model, batch, m, **FAST.get(m, {})))
        for m in available_methods(model)
        if m not in ("occlusion",)  # one call per token: slow on text, and no state of its own
    }
    if "attnlrp" in calls and text:
        calls["explain/attnlrp@embedding"] = lambda: explain(model, batch, "attnlrp", read_at="embedding")
    if "attnlrp" in calls:
        calls["conservation"] = lambda: {k: v.detach().numpy() for k, v in conservation_split(model, batch).items()}
    calls["faithfulness"] = lambda: per_input_scores(model, ds.subset(range(4)), ["rollout", "attnlrp"], 4, 4, 2)
    sample = make_sample(model, list(ds.inputs[:4]), ds.labels[:4], ds.class_names)
    calls["importance"] = lambda: head_scores(model, sample, batch_size=4)
    calls["spectral@tau2"] = lambda: spectral_metrics(model, batch, temperature=2.0, attention=False)
    calls["whatif"] = lambda: rank_collapse_whatif(model, batch, ("no skip", "no MLP"))
    activation = model_activation(model, 0)
    calls["activation lab"] = lambda: activation(torch.linspace(-3, 3, 64)).numpy()
    calls["logit lens"] = lambda: class_projection(model, model.run(batch, capture=True)).detach().numpy()
    calls["gated"] = lambda: model.run(
        batch, capture=False, head_gates=torch.zeros(model.spec.n_layers, model.spec.n_heads)
    ).logits.numpy()
    return calls


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "fc":
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
    return np.array_equal(a, b)


@pytest.mark.parametrize(("name", "data"), [("digits-vit", "digits"), ("minilm", "prose")])
def test_concurrent_analyses_on_one_model_equal_each_alone(name, data, request):
    model = request.getfixturevalue(name.replace("-", "_"))
    ds = load_dataset(data, "test")
    calls = _calls(model, ds)
    alone = {k: f() for k, f in calls.items()}
    jobs = [k for _ in range(ROUNDS) for k in calls]
    np.random.default_rng(0).shuffle(jobs)
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda k: (k, calls[k]()), jobs))
    wrong = sorted({k for k, got in together if not _same(got, alone[k])})
    assert not wrong, f"changed by a concurrent call: {wrong}"


def test_the_float64_pass_never_changes_what_other_calls_see(minilm):
    """Issue 35, item 5: while one thread runs chefer2021's float64 pass over and over, the embedding another
    thread reads (faithfulness's perturbed inputs) stays the shared model's float32 one, every time."""
    from analysis.faithfulness import _inputs

    batch = minilm.prepare(["The patient was given insulin.", "Wine samples were analysed for alcohol."])
    alone = _inputs(minilm, batch)
    with ThreadPoolExecutor(max_workers=2) as pool:
        lrp = pool.submit(lambda: [explain(minilm, batch, "chefer2021", precision="float64") for _ in range(8)])
        seen = [_inputs(minilm, batch) for _ in range(400)]
        lrp.result()
    assert all(x.dtype == torch.float32 and torch.equal(x, alone) for x in seen)
    assert next(minilm.net.parameters()).dtype == torch.float32
