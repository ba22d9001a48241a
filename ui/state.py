"""Session-state keys shared by the sidebar and every page (one place, so views agree)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import streamlit as st

MODEL = "model_name"  # str: built-in name, folder or hub id of the current model
CUSTOM_MODEL = "custom_model"  # str: what the user typed in "load a model"
LABELS = "text_labels"  # dict[model name -> tuple of label names] for prompt-head text models
LABEL_ERROR = "_label_error"  # str: why the last label edit was refused
SOURCE = "input_source"  # "dataset" | "upload" | "text"
INDEX = "input_index"  # int: index of the dataset sample
TEXT = "input_text"  # str: the free text
HEAD = "selected_head"  # (layer, head): the head selected in any view
QUERY = "selected_query"  # int token index of the query (0 = CLS)
SIDEBAR_CONTEXT = "_sidebar_context"
NO_CONTEXT = "_no_context"  # str: why the sidebar has no usable model or input this run, for the page to say
PRESENT = "presenter"  # bool: the presenter layout (larger type and figures, for a projector)
TOUR = "tour_at"  # (tour file path, step index) of the running tour, absent when none runs
TOUR_OPENED = "_tour_opened"  # int: how many steps were opened (a step opened again scrolls to the top again)
TOUR_GO = "_tour_go"  # (tour file path, step index) a button asked for; the next run opens it
DATASET = "dataset"  # (+ "_<model>") the dataset picked for a model: bundled name, recent source or OPEN
CUSTOM_DATASET = "custom_dataset"  # str: the folder, table file or hub id typed under "Open a folder or file…"
SPLIT = "dataset_split"  # (+ "_<source>") the split of a dataset source
MEMO = "_memo"  # dict[slot -> (key, value)]: what ui.cache.memo built last in each slot
PICTURES = "_pictures_sent"  # OrderedDict[picture id -> None]: the cell pickers' pictures the page holds, oldest first
BROWSE = "input_browse"  # "index" | "class" | "name": how the sidebar picks the dataset input
RECENT_FILE = "recent_datasets.json"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", re.ASCII)  # owner/name on the Hugging Face hub
RECENT_MAX = 8


def selected_head() -> tuple[int, int]:
    """The (layer, head) selected in any view; (0, 0) until one is chosen."""
    return tuple(st.session_state.get(HEAD, (0, 0)))


def select_head(layer: int, head: int) -> None:
    st.session_state[HEAD] = (int(layer), int(head))


def link_roots() -> list[Path]:
    """The folders a link may open a model or dataset from: $HEADSCOPE_LINK_ROOTS (separated by os.pathsep),
    default the user's home and the working folder."""
    given = [r for r in os.environ.get("HEADSCOPE_LINK_ROOTS", "").split(os.pathsep) if r.strip()]
    return [Path(r).expanduser().resolve() for r in given or [str(Path.home()), os.getcwd()]]


def outside_link_roots(value: str) -> str | None:
    """Why a link may not open `value` as a folder or file (outside link_roots()), or None when it may or when it
    names a hub id that is no local folder. Checked before the path's existence, so a link learns nothing of
    the folders outside the roots."""
    resolved, roots = Path(value).expanduser().resolve(), link_roots()
    if any(resolved.is_relative_to(r) for r in roots) or (HUB_ID.fullmatch(value) and not resolved.is_dir()):
        return None
    return (
        f"{resolved} is outside the folders a link may open ({', '.join(map(str, roots))}; "
        "HEADSCOPE_LINK_ROOTS names others)"
    )


def _recent_path() -> Path:
    """Where the recently opened datasets are kept: home()/recent_datasets.json."""
    from runs.store import home  # numpy and pandas: not before a fresh server's first status (app.py)

    return home() / RECENT_FILE


def recent_datasets() -> list[dict]:
    """The user's recently opened dataset sources, newest first: [{"source": str, "modality": str}]."""
    try:
        items = json.loads(_recent_path().read_text())
        return [r for r in items if isinstance(r, dict) and {"source", "modality"} <= set(r)]
    except (OSError, ValueError):
        return []


def remember_dataset(source: str, modality: str) -> None:
    """Put a dataset source first in the recent list (kept across restarts; a read-only home is ignored)."""
    items = [{"source": source, "modality": modality}] + [r for r in recent_datasets() if r["source"] != source]
    try:
        path = _recent_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(items[:RECENT_MAX], indent=1))
    except OSError:
        pass
