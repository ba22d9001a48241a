"""Everything that touches a network: one hooked interface for every supported model.

from models import load_model, list_models
m = load_model("digits-vit")          # or "minilm", a local folder, a hub id; device="cuda"
batch = m.prepare(images_or_texts)
trace = m.run(batch, capture=True, head_gates=None, temperature=None)
m.unembed(trace.resid[-1][:, 0])     # == trace.logits for ViTs
"""

from models.adapter import Block, HookedModel, ModelSpec, TextModel, VisionModel
from models.registry import BUILTINS, SUPPORTED, ModelLoadError, default_device, list_models, load_model
from models.trace import Batch, Trace, TraceArrays

__all__ = [
    "Batch",
    "Block",
    "BUILTINS",
    "HookedModel",
    "ModelLoadError",
    "ModelSpec",
    "SUPPORTED",
    "TextModel",
    "Trace",
    "TraceArrays",
    "VisionModel",
    "default_device",
    "list_models",
    "load_model",
]
