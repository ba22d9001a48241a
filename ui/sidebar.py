"""The sidebar: the model picker (with the label editor of a prompt head), the dataset and input pickers below it,
the presenter toggle and "Copy link" at its foot; and the page context it gives every view.

Every page starts with `ctx = page_context()`: through app.py it returns what the router's sidebar
built in this run; run standalone (AppTest.from_file on one page) it draws the sidebar itself.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from data import InputError
from models import BUILTINS, HookedModel, ModelLoadError, TextModel, list_models
from models.registry import local_size
from models.text import check_labels
from ui import cache, links, state
from ui.context import PageContext
from ui.input_picker import dataset_picker, input_picker, near_chance_warning, refused
from ui.navigation import use_router
from ui.present import presenter_toggle
from ui.text import literal

LOAD_OTHER = "Load a model from a folder or hub id…"


def page_context() -> PageContext | None:
    """The sidebar's model and input for this run (drawing the sidebar if app.py did not)."""
    drawn = st.session_state.pop(state.SIDEBAR_CONTEXT, None)  # (context,) when app.py drew the sidebar
    if drawn is not None:
        return drawn[0]
    use_router()
    return sidebar()


def sidebar() -> PageContext | None:
    """Draw the model, dataset and input pickers; returns None (after an st.error) if nothing usable is chosen."""
    st.session_state.pop(state.NO_CONTEXT, None)
    with st.sidebar:
        st.markdown("### HeadScope")
        model, name = _model_picker()
        if model is None:
            return None
        _link_head(model.spec.n_layers, model.spec.n_heads)
        dataset, match = dataset_picker(model, name)
        near_chance_warning(model, name, dataset)
        st.divider()
        return input_picker(model, name, dataset, match)


def _link_head(n_layers: int, n_heads: int) -> None:
    """A link's layer and head (clamped to the model) select the head; the URL gets the selected head back."""
    layer, head = links.value("layer"), links.value("head")
    if layer is not None or head is not None:
        cur = state.selected_head()
        new_layer = links.clamp("layer", layer, 0, n_layers - 1) if layer is not None else None
        new_head = links.clamp("head", head, 0, n_heads - 1) if head is not None else None
        state.select_head(cur[0] if new_layer is None else new_layer, cur[1] if new_head is None else new_head)
    links.live("layer", lambda: str(state.selected_head()[0]))
    links.live("head", lambda: str(state.selected_head()[1]))


def model_from_link() -> bool:
    """A link's model that is not built in loads only once the user says so (a link must not make the server ask
    the hub, or open any folder): a hub id, or a folder inside the link roots (state.link_roots), asks first in
    the main area; anything else is refused with a note. False while the question is open: the view waits, and
    the link's other parameters stay pending for the model they were meant for."""
    wanted = links.peek("model")
    builtins = list(list_models())
    if wanted is None or wanted in builtins:
        return True
    current = st.session_state.get(state.MODEL, builtins[0])
    folder = Path(wanted).expanduser()
    refused = state.outside_link_roots(wanted)
    if refused or not (folder.is_dir() or state.HUB_ID.fullmatch(wanted)):
        links.value("model")
        why = refused or f"not a built-in model ({', '.join(builtins)}), a model folder or a hub id"
        links.note(f"model={wanted!r}: {why}; opened {current}.")
        return True
    size = local_size(wanted)
    mb = "under 1 MB" if size is not None and size < 1e6 else f"{(size or 0) / 1e6:,.0f} MB"
    if folder.is_dir():
        what = f"the model in the folder {folder.resolve()} ({mb})"
    elif size is not None:
        what = f"{wanted} from the Hugging Face hub ({mb}, already in this machine's cache)"
    else:
        from huggingface_hub import is_offline_mode

        how = "this server is offline (HF_HUB_OFFLINE): it cannot be downloaded" if is_offline_mode() else "downloaded"
        what = f"{wanted} from the Hugging Face hub (not in this machine's cache; {how})"
    with st.container(border=True, key="link_model"):
        st.markdown(f"This link loads {literal(what)}. Load it?")
        yes, no = st.columns(2)
        yes.button("Load it", key="link_model_load", type="primary", on_click=_answer, args=(wanted, True))
        no.button(f"Open with {current} instead", key="link_model_skip", on_click=_answer, args=(wanted, False))
    return False


def _answer(wanted: str, load: bool) -> None:
    """Button callback of model_from_link: load the link's model (in "load a model"), or keep the current one."""
    links.value("model")
    if load:
        st.session_state[state.MODEL], st.session_state[state.CUSTOM_MODEL] = LOAD_OTHER, wanted
    else:
        links.note(f"model={wanted!r} was not loaded, as you chose; kept the current model.")


def _model_picker() -> tuple[HookedModel | None, str]:
    builtins = list(list_models())
    if (wanted := links.value("model")) in builtins:  # model_from_link took any other
        st.session_state[state.MODEL] = wanted
    choice = st.selectbox(
        "Model",
        builtins + [LOAD_OTHER],
        key=state.MODEL,
        help="Built-in: " + "; ".join(f"{n}: {BUILTINS[n].description}" for n in builtins) + ". "
        "Built-in models work offline. Any Hugging Face ViT/DeiT image classifier or "
        "BERT-family encoder can be loaded from a local folder or a hub id.",
    )
    name = choice
    if choice == LOAD_OTHER:
        typed = st.text_input(
            "Folder or hub id",
            key=state.CUSTOM_MODEL,
            placeholder="/path/to/saved_model or google/vit-base-patch16-224",
        )
        if not typed.strip():
            st.info("Type a local folder (saved with save_pretrained) or a Hugging Face hub id, then press Enter.")
            return None, ""
        name = typed.strip()
    labels = st.session_state.get(state.LABELS, {}).get(name)
    try:
        model = cache.get_model(name, labels)
    except ModelLoadError as e:
        refused(literal(str(e)), "The model cannot be loaded: pick another one.")
        return None, name
    except InputError as e:
        refused(f"The label set was refused: {literal(str(e))}", "The model's label set was refused: edit it.")
        return None, name
    spec = model.spec
    st.caption(
        f"{spec.architecture} · {spec.n_layers} layers × {spec.n_heads} heads · width {spec.d_model} · "
        f"{len(spec.class_names)} classes · {model.device.type}"
    )
    if spec.head == "prompts" and isinstance(model, TextModel):  # a prompt head is a text model's
        _label_editor(model, name)
    links.live("model", name)
    return model, name


def _label_editor(model: TextModel, name: str) -> None:
    """Edit the label set of a prompt-head text model (one label per line)."""
    with st.expander("Class labels (prompt head)"):
        st.caption(
            f'Each label becomes the prompt "{model.prompt_template.format("<label>")}"; a text\'s class '
            "scores are its cosine similarities to those prompts."
        )
        st.text_area("One label per line", "\n".join(model.spec.class_names), key=f"labels_{name}")
        st.button("Apply labels", key=f"apply_labels_{name}", on_click=_apply_labels, args=(name,))
        error = st.session_state.pop(state.LABEL_ERROR, None)
        if error:
            st.error(error)


def _apply_labels(name: str) -> None:
    """Button callback: validate the typed labels and make them the model's label set."""
    text = st.session_state.get(f"labels_{name}", "")
    try:
        labels = tuple(check_labels(text.splitlines()))
    except InputError as e:
        st.session_state[state.LABEL_ERROR] = f"Labels not applied: {e}"
        return
    st.session_state[state.LABELS] = {**st.session_state.get(state.LABELS, {}), name: labels}


def link_and_layout() -> None:
    """The sidebar's presenter toggle and "Copy link" (filled when the view has run and its state is known)."""
    with st.sidebar:
        st.divider()
        presenter_toggle()
        slot = st.empty()

    def show(link: str) -> None:  # opening the popover reruns the app, so a fragment's changes are in the link
        if not link:
            return
        with slot.container(), st.popover("Copy link", icon=":material/link:", width="stretch", on_change="rerun"):
            st.caption(
                "This address reopens the view as it is now: model, dataset, input, selected head and the view's "
                "options. Copy it with the button at the right of the box."
            )
            st.code(link, language=None, wrap_lines=True)

    links.show_link_with(show)


def no_model_message() -> None:
    """What a page shows when the sidebar has no usable model or input: why, when the sidebar said so."""
    st.info(st.session_state.pop(state.NO_CONTEXT, None) or "Pick a model and an input in the sidebar to start.")
