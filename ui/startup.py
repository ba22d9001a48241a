"""The first page of a fresh server without waiting for PyTorch.

Importing torch, transformers' model code and the analyses takes most of a fresh server's first page (about
9 s of 11 s on a 2-core machine, a few seconds on a laptop). app.py therefore serves the Home view at once
and starts these imports in a background thread; the sidebar says what it is waiting for and the app reruns
when they are done. Every other view waits for them (it needs a model), as before. The scikit-learn parts the
dataset-level analyses import on first use are among them (about 1 s): the first view to need them does not pay.
"""

from __future__ import annotations

import importlib
import sys
import threading

# the app's own heavy modules (torch, datasets, the analyses), the model code of the built-in architectures,
# which transformers imports lazily on the first load, and the scikit-learn parts of analysis.embedding and
# analysis.patterns (imported in their functions)
MODULES = (
    "ui.sidebar",
    "ui.framing",
    "ui.cache",
    "transformers.models.vit.modeling_vit",
    "transformers.models.bert.modeling_bert",
    "sklearn.cluster",
    "sklearn.decomposition",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
)

_thread: threading.Thread | None = None
_lock = threading.Lock()


def ready() -> bool:
    """True when the heavy modules are imported (at once when something imported them before, as tests do)."""
    if _thread is not None:
        return not _thread.is_alive()
    return all(name in sys.modules for name in MODULES)


def start() -> None:
    """Import the heavy modules in a background thread (once per process)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import_all, name="headscope-startup", daemon=True)
            _thread.start()


def wait() -> None:
    """Block until the imports are done (a view that needs a model)."""
    start()
    assert _thread is not None
    _thread.join()


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional architecture's code; the import in the script thread reports it
            pass
