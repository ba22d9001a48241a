"""A model's identity: a hash of what determines its outputs (config, class names, every weight)."""

from __future__ import annotations

import hashlib
import json
import weakref

import torch

from models.adapter import HookedModel

_FINGERPRINTS: weakref.WeakKeyDictionary[HookedModel, str] = weakref.WeakKeyDictionary()


def model_fingerprint(model: HookedModel) -> str:
    """A hash of the model's config, class names and every weight (computed once per model object)."""
    if model not in _FINGERPRINTS:
        h = hashlib.sha256()
        config = getattr(model.net, "config", None)
        h.update((config.to_json_string() if config is not None else type(model.net).__name__).encode())
        h.update(json.dumps(list(model.spec.class_names)).encode())
        for name, t in sorted(model.net.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        _FINGERPRINTS[model] = h.hexdigest()[:24]
    return _FINGERPRINTS[model]
