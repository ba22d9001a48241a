"""The image side of the model interface: ViT / DeiT classifiers (models.adapter.HookedModel), their input
preparation (resize, normalise, notes on unusual images) and their blocks' handles."""

from __future__ import annotations

import numpy as np
import torch

from models.adapter import Block, HookedModel
from models.trace import Batch

TINY_IMAGE = 4  # an image whose longer side is under 1/4 of the model's input side gets a note


class VisionModel(HookedModel):
    """ViTForImageClassification, DeiTForImageClassification(WithTeacher)."""

    def __init__(self, net, spec, blocks, device, base, preprocess: dict):
        super().__init__(net, spec, blocks, device)
        self.base = base
        self.mean = np.asarray(preprocess["mean"], dtype=np.float32)
        self.std = np.asarray(preprocess["std"], dtype=np.float32)
        self.classifiers = (
            [net.cls_classifier, net.distillation_classifier]
            if hasattr(net, "distillation_classifier")
            else [net.classifier]
        )
        self._readout_rows = len(self.classifiers)

    def prepare(self, inputs) -> Batch:
        """PIL images or arrays ([H, W] / [H, W, C], uint8 or floats in [0, 1]) -> Batch."""
        from PIL import Image

        from data.inputs import InputError

        if isinstance(inputs, (Image.Image, np.ndarray)):
            inputs = [inputs]
        inputs = list(inputs)
        if not inputs:
            raise InputError("No images given.")
        gh, gw, _, s, c = self.spec.image_layout()
        arrays, notes = [], []
        for i, img in enumerate(inputs):
            if isinstance(img, np.ndarray):
                a = img
                if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)) or a.size == 0:
                    raise InputError(f"Image {i + 1}: an array must be [H, W] or [H, W, 1|3|4], got {a.shape}.")
                a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 or a.max() > 1.0 else 1.0)
                a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
                if a.ndim == 3:
                    a = a[..., 0] if a.shape[-1] == 1 else a[..., :3]
                img = Image.fromarray(a)
            elif not isinstance(img, Image.Image):
                raise InputError(f"Image {i + 1}: expected a PIL image or an array, got {type(img).__name__}.")
            w, h = img.size
            if max(w, h) * TINY_IMAGE < s:
                notes.append(
                    f"Image {i + 1} is {w}x{h} pixels, far smaller than the {s}x{s} the model reads: it was enlarged "
                    f"{s / max(w, h):.0f}x, so the model sees a few flat blocks, not the detail it was trained on."
                )
            img = img.convert("L" if c == 1 else "RGB").resize((s, s), Image.Resampling.BILINEAR)
            a = np.asarray(img, dtype=np.float32) / 255.0
            if a.max() - a.min() < 1.0 / 255:
                notes.append(
                    f"Image {i + 1} is one flat colour: it has nothing to attend to, and the prediction says only "
                    "which class that colour looks most like."
                )
            arrays.append(a[..., None] if a.ndim == 2 else a)
        images = np.stack(arrays)  # [B, S, S, C]
        x = torch.from_numpy((images - self.mean) / self.std).permute(0, 3, 1, 2).contiguous()
        t = self.spec.n_prefix + gh * gw
        return Batch({"pixel_values": x}, torch.ones(len(images), t, dtype=torch.bool), images=images, notes=notes)

    def _embed(self, batch: Batch) -> torch.Tensor:
        return self.base.embeddings(batch.tensors["pixel_values"].to(self.device))

    def _head_logits(self, hidden, batch):
        x = self.base.layernorm(hidden)
        return sum(clf(x[:, i]) for i, clf in enumerate(self.classifiers)) / len(self.classifiers)

    def _unembed(self, hidden):
        x = self.base.layernorm(hidden.to(self.device))
        return sum(clf(x) for clf in self.classifiers) / len(self.classifiers)


# ---------------------------------------------------------------------------------------------
# Text: BERT-family encoders (sequence classifiers, or plain encoders scored against label prompts)
# ---------------------------------------------------------------------------------------------
def vit_blocks(layers) -> list[Block]:
    """Block handles for transformers-5 ViT/DeiT layers (attention.{q,k,v,o}_proj, mlp.fc1/fc2)."""
    return [
        Block(
            attn=m.attention,
            q=m.attention.q_proj,
            k=m.attention.k_proj,
            v=m.attention.v_proj,
            o=m.attention.o_proj,
            ln1=m.layernorm_before,
            ln2=m.layernorm_after,
            fc1=m.mlp.fc1,
            act=m.mlp.activation_fn,
            fc2=m.mlp.fc2,
        )
        for m in layers
    ]
