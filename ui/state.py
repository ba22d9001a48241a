"""Session-state keys shared by the sidebar and every page (one place, so views agree)."""
from __future__ import annotations

import streamlit as st

MODEL = "model_name"            # str: built-in name, folder or hub id of the current model
CUSTOM_MODEL = "custom_model"   # str: what the user typed in "load a model"
LABELS = "text_labels"          # dict[model name -> tuple of label names] for prompt-head text models
LABEL_ERROR = "_label_error"    # str: why the last label edit was refused
SOURCE = "input_source"         # "dataset" | "upload" | "text"
INDEX = "input_index"           # int: index of the dataset sample
TEXT = "input_text"             # str: the free text
HEAD = "selected_head"          # (layer, head): the head selected in any view
QUERY = "selected_query"        # int token index of the query (0 = CLS)
SIDEBAR_CONTEXT = "_sidebar_context"


def selected_head() -> tuple[int, int]:
    """The (layer, head) selected in any view; (0, 0) until one is chosen."""
    return tuple(st.session_state.get(HEAD, (0, 0)))


def select_head(layer: int, head: int) -> None:
    st.session_state[HEAD] = (int(layer), int(head))
