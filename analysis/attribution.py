"""What every relevance method is (`Method`: labels, computation, options, when it applies), what a map is of
(each input's target class `resolve_target` and its score `target_scores`), input attributions summed per token
(`token_attributions`), and the error every method raises for a request it cannot explain. Shared by
analysis/relevance.py (the registry), captum_methods.py and conservation.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from analysis.options import Options
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


def always(model: HookedModel) -> str | None:
    return None


@dataclass(frozen=True)
class NoOptions(Options):
    """A method without options."""


@dataclass(frozen=True)
class Method:
    """One relevance method: its labels and its computation. family: "attention", "attention x gradient", "LRP",
    "gradient" (captum) or "perturbation" (captum); gradient_based: uses gradients of the target score;
    compute(model, batch, target, method=name, **options) -> token relevance [B, T'] (batch on the model's
    device, target as for `explain`); requirement(model) -> None, or why the method does not apply;
    reads_text_at: compute takes the `read_at` option (where a text model's relevance is read, READ_AT);
    options: its Options class (what explain() accepts as keyword options for it, validated)."""

    name: str
    label: str
    citation: str
    description: str
    family: str
    gradient_based: bool
    compute: Callable[..., torch.Tensor]
    requirement: Callable[[HookedModel], str | None] = always
    reads_text_at: bool = False
    options: type[Options] = NoOptions

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", type(self.options.__name__, (self.options,), {"label": self.name}))

    def why_not(self, model: HookedModel) -> str | None:
        """None when the method applies to `model`, else the reason it does not."""
        return self.requirement(model)

    def applies_to(self, model: HookedModel) -> bool:
        return self.why_not(model) is None

    @property
    def class_specific(self) -> bool:
        """False for the attention family (raw attention, rollout): the same map for every target class."""
        return self.family != "attention"
