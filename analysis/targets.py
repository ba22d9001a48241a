"""What a relevance map is of: each input's target class (`resolve_target`) and its score (`target_scores`),
input attributions summed per token (`token_attributions`), and the error every relevance method raises for a
request it cannot explain. Shared by analysis/relevance.py, captum_methods.py and conservation.py."""

from __future__ import annotations

import torch

from models import HookedModel


class RelevanceError(ValueError):
    """A request that cannot be explained (unknown method, method not applicable, target out of range)."""


def resolve_target(model: HookedModel, logits: torch.Tensor, target=None) -> torch.Tensor:
    """[B] long target classes on the logits' device: the predicted class when target is None, else an
    int or a sequence of B ints; raises RelevanceError for a class out of range."""
    b, c = logits.shape
    if target is None:
        return logits.detach().argmax(-1)
    t = torch.as_tensor(target, dtype=torch.long, device=logits.device).flatten()
    if t.numel() == 1:
        t = t.expand(b)
    if t.numel() != b:
        raise RelevanceError(f"Give one target class or one per input ({b}), got {t.numel()}.")
    bad = [int(x) for x in t.tolist() if not 0 <= x < c]
    if bad:
        raise RelevanceError(
            f"Target class {bad[0]} is out of range: {model.spec.name} has {c} classes (0 to {c - 1})."
        )
    return t


def target_scores(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[B] the logit of each input's target class: logits [B, C], target [B]."""
    return logits.gather(1, target[:, None])[:, 0]


def token_attributions(model: HookedModel, attr: torch.Tensor) -> torch.Tensor:
    """Input attributions -> [B, T'] per token: pixels summed over channels and over each patch (images),
    embedding dimensions summed (text; prefix token dropped)."""
    if model.spec.modality == "image":
        h, w, p, _, _ = model.spec.image_layout()
        a = attr.sum(1)  # [B, S, S]
        return a.reshape(a.shape[0], h, p, w, p).sum((2, 4)).flatten(1)
    return attr.sum(-1)[:, model.spec.n_prefix :]
