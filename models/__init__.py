"""Everything that touches a network: one hooked interface for every supported model.

from models import load_model, list_models
m = load_model("digits-vit")          # or "minilm", a local folder, a hub id; device="cuda"
batch = m.prepare(images_or_texts)
trace = m.run(batch, capture=True, head_gates=None, temperature=None, hooks=[(name, fn), ...])
m.unembed(trace.resid[-1][:, 0])     # == trace.logits for ViTs

Every forward is the block forward by hand (`m.block`: `m.attend`, `m.block_tail`), calling the named hook
points of models/hooks.py (docs/hooks.md); hooks belong to one call. `block_tail` takes a `BlockRules`
extension point (the residual adds, plain by default) that models/lrp.py fills with Chefer's rule.
`m.float64()` is the same model in float64 (a copy kept with it), for passes that need exact sums.
"""

from models.adapter import PLAIN, Block, BlockRules, HookedModel, ModelSpec
from models.identity import model_fingerprint
from models.registry import BUILTINS, SUPPORTED, ModelLoadError, default_device, list_models, load_model
from models.text import TextModel
from models.trace import Batch, Resume, Trace, TraceArrays
from models.vision import VisionModel

__all__ = [
    "Batch",
    "Block",
    "BlockRules",
    "BUILTINS",
    "HookedModel",
    "ModelLoadError",
    "ModelSpec",
    "PLAIN",
    "Resume",
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
