"""The one model interface: parity with Hugging Face, gates, temperature, unembed, hooks, loading errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data import InputError, load_dataset
from models import ModelLoadError, Resume, list_models, load_model


@pytest.fixture(scope="module")
def digits_batch(digits_vit):
    return digits_vit.prepare(load_dataset("digits", "test").inputs[:16])


@pytest.fixture(scope="module")
def prose_batch(minilm):
    return minilm.prepare(load_dataset("prose", "test").inputs[:6])


MODELS = ["digits_vit", "minilm", "tiny_vit", "tiny_bert"]


def _model_and_batch(request, name):
    m = request.getfixturevalue(name)
    if m.spec.modality == "image":
        rng = np.random.default_rng(0)
        imgs = [rng.random((m.spec.image_size, m.spec.image_size, m.spec.channels)).squeeze() for _ in range(3)]
        return m, m.prepare(imgs)
    return m, m.prepare(["A short sentence.", "A rather longer sentence about the weather in the mountains today."])


def test_list_models_has_builtins():
    names = list_models()
    assert {"digits-vit", "minilm"} <= set(names)


def test_digits_vit_spec_and_accuracy(digits_vit):
    s = digits_vit.spec
    assert (s.modality, s.n_layers, s.n_heads, s.grid, s.has_cls) == ("image", 4, 4, (8, 8), True)
    assert s.class_names == tuple(str(i) for i in range(10))
    ds = load_dataset("digits", "test")
    pred = digits_vit.logits(digits_vit.prepare(ds.inputs)).argmax(-1).numpy()
    assert (pred == ds.labels).mean() >= 0.97
    metrics = json.loads((Path(digits_vit.spec.source) / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97 and metrics["n_test"] == len(ds)


@pytest.mark.parametrize("name", MODELS)
def test_captured_attentions_equal_hf_output_attentions(request, name):
    m, batch = _model_and_batch(request, name)
    tr = m.run(batch, capture=True)
    with torch.no_grad():
        out = m.net(**batch.tensors, output_attentions=True)
    assert len(out.attentions) == m.spec.n_layers
    for ours, theirs in zip(tr.attn_list, out.attentions):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    L, B, H, T = m.spec.n_layers, len(batch), m.spec.n_heads, batch.token_mask.shape[1]
    assert tr.attentions.shape == (L, B, H, T, T)
    assert tr.resid.shape == (L + 1, B, T, m.spec.d_model)
    assert tr.attn_out.shape == tr.mlp_out.shape == (L, B, T, m.spec.d_model)


@pytest.mark.parametrize("name", MODELS)
def test_capture_does_not_change_logits_and_matches_hf(request, name):
    m, batch = _model_and_batch(request, name)
    plain = m.run(batch, capture=False).logits
    captured = m.run(batch, capture=True).logits
    assert torch.equal(plain, captured)
    if m.spec.head == "classifier":
        with torch.no_grad():
            hf = m.net(**batch.tensors).logits
        torch.testing.assert_close(plain, hf, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_unit_gates_and_temperature_reproduce_logits_exactly(request, name):
    m, batch = _model_and_batch(request, name)
    plain = m.run(batch, capture=False).logits
    L, H = m.spec.n_layers, m.spec.n_heads
    assert torch.equal(m.run(batch, capture=False, head_gates=torch.ones(L, H), temperature=1.0).logits, plain)
    assert torch.equal(m.run(batch, capture=False, temperature=[1.0] * L).logits, plain)


@pytest.mark.parametrize("name", ["digits_vit", "tiny_bert"])
def test_zero_gate_equals_zeroing_head_slice_by_hand(request, name):
    m, batch = _model_and_batch(request, name)
    L, H = m.spec.n_layers, m.spec.n_heads
    layer, head = L - 1, 1
    gates = torch.ones(L, H)
    gates[layer, head] = 0
    gated = m.run(batch, capture=False, head_gates=gates).logits
    dh = m.spec.d_model // H

    def zero_slice(mod, args):
        x = args[0].clone()
        x[..., head * dh : (head + 1) * dh] = 0
        return (x,)

    handle = m.blocks[layer].o.register_forward_pre_hook(zero_slice)
    try:
        by_hand = m.run(batch, capture=False).logits
    finally:
        handle.remove()
    torch.testing.assert_close(gated, by_hand, rtol=0, atol=1e-6)
    assert not torch.allclose(gated, m.run(batch, capture=False).logits)


def test_per_sample_gates_match_shared_gates(digits_vit, digits_batch):
    L, H = 4, 4
    g = torch.ones(L, H)
    g[2, 3] = 0
    shared = digits_vit.run(digits_batch, capture=False, head_gates=g).logits
    per_sample = digits_vit.run(digits_batch, capture=False, head_gates=g.expand(len(digits_batch), L, H)).logits
    torch.testing.assert_close(shared, per_sample)


def test_resume_from_residual_equals_full_run(digits_vit, digits_batch):
    tr = digits_vit.run(digits_batch)
    for layer in range(digits_vit.spec.n_layers + 1):
        resumed = digits_vit.run(digits_batch, capture=False, resume=Resume(tr.resid[layer], layer))
        torch.testing.assert_close(resumed.logits, tr.logits, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="resume.layer must be in 0..4"):
        digits_vit.run(digits_batch, resume=Resume(tr.resid[0], 5))


@pytest.mark.parametrize("name", MODELS)
def test_resume_after_attention_and_readout_only_equal_full_gated_runs(request, name):
    m, b = _model_and_batch(request, name)
    L, H = m.spec.n_layers, m.spec.n_heads
    tr = m.run(b)
    assert m.readout_rows == (None if name == "minilm" else 1)  # minilm mean-pools every token
    torch.testing.assert_close(m.run(b, capture=False, readout_only=True).logits, tr.logits, rtol=0, atol=1e-5)
    for layer in range(L):
        g = torch.ones(len(b), L, H)
        g[:, layer, (layer + 1) % H] = 0
        g[0, -1, 0] = 0.5  # a later (or the same) layer gated too, per input
        full = m.run(b, capture=False, head_gates=g).logits
        heads = m.head_outputs(layer, tr.resid_list[layer], b)
        assert heads.shape == (len(b), tr.resid.shape[2], m.spec.d_model)
        fast = m.run(
            b,
            capture=False,
            head_gates=g,
            resume=Resume(tr.resid_list[layer], layer, heads),
            readout_only=True,
        )
        torch.testing.assert_close(fast.logits, full, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="capture=False"):
        m.run(b, readout_only=True)
    with pytest.raises(ValueError, match="resume.heads needs a resume.layer below"):
        m.run(b, capture=False, resume=Resume(tr.resid_list[-1], L, heads))


def test_temperature_flattens_attention(digits_vit, digits_batch):
    hot = digits_vit.run(digits_batch, temperature=1e4).attentions
    t = hot.shape[-1]
    torch.testing.assert_close(hot, torch.full_like(hot, 1 / t), rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match="temperature"):
        digits_vit.run(digits_batch, temperature=0.0)
    with pytest.raises(ValueError, match="per layer"):
        digits_vit.run(digits_batch, temperature=[1.0, 2.0])


def test_gradients_wrt_gates_and_attention(digits_vit, digits_batch):
    gates = torch.ones(4, 4, requires_grad=True)
    tr = digits_vit.run(digits_batch, head_gates=gates, grad=True)
    tr.logits[:, 3].sum().backward()
    assert gates.grad is not None and gates.grad.abs().sum() > 0
    grads = tr.attention_grads()
    assert grads.shape == tr.attentions.shape and grads.abs().sum() > 0
    # no graph is kept by default
    assert not digits_vit.run(digits_batch).logits.requires_grad
    digits_vit.net.zero_grad(set_to_none=True)  # backward() filled the shared model's parameter grads


def test_unembed_of_last_cls_equals_logits(digits_vit, tiny_vit, digits_batch):
    tr = digits_vit.run(digits_batch)
    torch.testing.assert_close(digits_vit.unembed(tr.resid[-1][:, 0]), tr.logits, rtol=0, atol=1e-6)
    rng = np.random.default_rng(1)
    b = tiny_vit.prepare([rng.random((16, 16, 3))])
    tr = tiny_vit.run(b)
    torch.testing.assert_close(tiny_vit.unembed(tr.resid[-1][:, 0]), tr.logits, rtol=0, atol=1e-6)


def test_text_prompt_head_matches_pooled_unembed(minilm, prose_batch):
    tr = minilm.run(prose_batch)
    pooled = minilm.pool(tr.resid[-1], prose_batch.token_mask)
    torch.testing.assert_close(minilm.unembed(pooled), tr.logits, rtol=0, atol=1e-5)
    # sentence-transformers' own recipe: mean pooling over real tokens, then L2 normalisation
    assert torch.all(tr.logits.abs() <= 20.0 + 1e-4)


def test_padding_does_not_change_text_logits(minilm):
    short = "Iris flowers have three species."
    alone = minilm.run(minilm.prepare([short]), capture=False).logits
    padded = minilm.run(
        minilm.prepare([short, short + " " + "More words follow here to force padding." * 3]), capture=False
    ).logits[:1]
    torch.testing.assert_close(alone, padded, rtol=0, atol=1e-5)


def test_custom_labels(tmp_path):
    m = load_model("minilm", device="cpu")
    m.set_labels(["cooking", "astronomy"])
    assert m.spec.class_names == ("cooking", "astronomy")
    logits = m.run(m.prepare(["The telescope observed a distant galaxy and its stars."]), capture=False).logits
    assert logits.shape == (1, 2) and logits.argmax().item() == 1
    for bad in (["only one"], ["a", "a"]):
        with pytest.raises(InputError):
            m.set_labels(bad)


def test_hub_path_loads_saved_folders(tiny_vit, tiny_bert, tiny_vit_dir):
    assert tiny_vit.spec.grid == (4, 4) and tiny_vit.spec.class_names == ("a", "b", "c")
    assert tiny_bert.spec.modality == "text" and tiny_bert.spec.head == "classifier"
    assert tiny_bert.spec.class_names == ("negative", "positive")
    assert load_model(str(tiny_vit_dir), device="cpu").spec.source == str(tiny_vit_dir)


def test_plain_bert_encoder_gets_prompt_head(tmp_path, tiny_bert_dir):
    from transformers import AutoTokenizer, BertConfig, BertModel

    cfg = BertConfig.from_pretrained(tiny_bert_dir)
    BertModel(cfg).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path)
    m = load_model(str(tmp_path), device="cpu")
    assert m.spec.head == "prompts" and len(m.spec.class_names) >= 2
    assert m.run(m.prepare(["hello there"]), capture=False).logits.shape == (1, len(m.spec.class_names))


def test_deit_with_teacher_loads_and_unembeds(tmp_path):
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher

    torch.manual_seed(0)
    cfg = DeiTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
    )
    DeiTForImageClassificationWithTeacher(cfg).save_pretrained(tmp_path)
    m = load_model(str(tmp_path), device="cpu")
    assert m.spec.n_prefix == 2 and m.spec.grid == (4, 4)
    b = m.prepare([np.zeros((16, 16, 3), dtype=np.uint8)])
    tr = m.run(b)
    assert tr.attentions.shape[-1] == 18
    assert m.readout_rows == 2  # the CLS and distillation tokens
    torch.testing.assert_close(m.run(b, capture=False, readout_only=True).logits, tr.logits, rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(tr.logits, m.net(**b.tensors).logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "name,match",
    [
        ("no-such-model-anywhere", "Tried"),
        ("", "No model"),
    ],
)
def test_unknown_model_gives_clear_message(name, match):
    with pytest.raises(ModelLoadError, match=match) as e:
        load_model(name)
    if name:
        assert "Supported" in str(e.value) and "digits-vit" in str(e.value)


def test_folder_without_config_and_unsupported_architecture(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(str(tmp_path))
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16)).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="cannot analyse"):
        load_model(str(tmp_path))


def test_missing_weights_and_missing_folder_are_named(tmp_path, tiny_vit_dir):
    """A folder with a config but no weights names the missing weight file first (not the architecture); a
    path that does not exist says so, without hub-id talk."""
    import shutil

    shutil.copytree(tiny_vit_dir, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="has a config.json but no weights.*model.safetensors"):
        load_model(str(tmp_path / "m"))
    assert load_model(str(tmp_path / "m"), random_init=True).spec.n_layers == 2  # a random baseline needs none
    for path in (str(tmp_path / "nowhere"), "~/no/such/folder", "./nowhere"):
        with pytest.raises(ModelLoadError, match="does not exist") as e:
            load_model(path)
        assert "hub" not in str(e.value)


def test_corrupt_weights_give_clear_message(tmp_path, tiny_vit_dir):
    import shutil

    shutil.copytree(tiny_vit_dir, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(str(tmp_path / "m"))


def test_trace_array_form_round_trip(digits_vit):
    """Trace.to_numpy keeps every activation (float32, CPU) and Trace.from_arrays gives the analyses the same
    Trace back; TraceArrays.probs is the softmax of the logits."""
    from data import load_dataset
    from models import Trace

    tr = digits_vit.run(digits_vit.prepare(load_dataset("digits", "test").inputs[:2]), capture=True)
    arrays = tr.to_numpy()
    back = Trace.from_arrays(arrays)
    for name in ("logits", "token_mask", "attentions", "resid", "attn_out", "mlp_out"):
        np.testing.assert_array_equal(getattr(arrays, name), getattr(tr, name).cpu().numpy(), err_msg=name)
        assert torch.equal(getattr(back, name), getattr(tr, name).cpu()), name
    np.testing.assert_allclose(arrays.probs, tr.logits.softmax(-1).numpy(), rtol=1e-5, atol=1e-7)
    assert arrays.attentions.dtype == np.float32 and arrays.attentions.shape[:2] == (4, 2)


def test_prepare_notes_inputs_the_model_can_say_little_about(digits_vit, minilm):
    """A tiny image, a flat image and a text of unknown word pieces each get a note (shown in the sidebar);
    an ordinary input gets none."""
    from PIL import Image

    assert digits_vit.prepare([Image.new("L", (1, 1), 200)]).notes[0].startswith("Image 1 is 1x1 pixels")
    flat = digits_vit.prepare([Image.new("L", (64, 64), 90)]).notes
    assert len(flat) == 1 and "one flat colour" in flat[0]
    ramp = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1)))
    assert digits_vit.prepare([ramp]).notes == []
    emoji = minilm.prepare(["🦜🦜 🌋 🧪🧪"]).notes
    assert len(emoji) == 1 and "unknown to the tokenizer" in emoji[0]
    assert minilm.prepare(["The patient was given insulin."]).notes == []


def test_unreachable_hub_answers_at_once_and_the_local_cache_still_works(monkeypatch, tmp_path, tiny_vit_dir):
    """Offline, a hub id is looked up in the local Hugging Face cache after one short probe: a cached model
    loads, an uncached one gets a message at once instead of minutes of retries."""
    import shutil
    import time

    from huggingface_hub import constants

    from models.registry import HUB_PROBE_S

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="cannot be reached") as e:
        load_model("someone/not-cached")
    assert time.perf_counter() - start < HUB_PROBE_S + 2 and "Supported" in str(e.value)
    with pytest.raises(ModelLoadError, match="cannot be reached"):  # not even a valid hub id: the same message
        load_model("not a hub id!")

    repo = tmp_path / "hub" / "models--someone--tiny-vit"  # the cache layout huggingface_hub writes
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    shutil.copytree(tiny_vit_dir, repo / "snapshots" / "abc123")
    m = load_model("someone/tiny-vit")
    assert m.spec.grid == (4, 4) and m.spec.name == "someone/tiny-vit"
