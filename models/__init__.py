"""Everything that touches a network: one hooked interface for every supported model.

from models import load_model, list_models
m = load_model("digits-vit")          # or "minilm", a local folder, a hub id; device="cuda"
batch = m.prepare(images_or_texts)
trace = m.run(batch, capture=True, head_gates=None, temperature=None)
m.unembed(trace.resid[-1][:, 0])     # == trace.logits for ViTs

The block forward by hand (`m.attend`, `m.block_tail`, `m.head_logits`) takes `BlockRules` extension points
(identity by default: the attention matmuls, the softmax, the residual adds); models/lrp.py fills them with
its LRP rules. `m.in_float64()` runs anything inside it with the network in float64.
"""

from models.adapter import PLAIN, Block, BlockRules, HookedModel, ModelSpec, TextModel, VisionModel
from models.identity import model_fingerprint
from models.registry import BUILTINS, SUPPORTED, ModelLoadError, default_device, list_models, load_model
from models.trace import Batch, Trace, TraceArrays

__all__ = [
    "Batch",
    "Block",
    "BlockRules",
    "BUILTINS",
    "HookedModel",
    "ModelLoadError",
    "ModelSpec",
    "PLAIN",
    "SUPPORTED",
    "TextModel",
    "Trace",
    "TraceArrays",
    "VisionModel",
    "default_device",
    "list_models",
    "load_model",
    "model_fingerprint",
]
