"""The views of HeadScope, in menu order. app.py routes to those whose page file exists."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
APP_SCRIPT = PAGES_DIR.parent / "app.py"  # the router: `streamlit run app.py`


@dataclass(frozen=True)
class View:
    file: str
    title: str
    icon: str
    summary: str

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file

    @property
    def name(self) -> str:
        """The view's name in URLs, links and tours ("attention")."""
        return Path(self.file).stem


VIEWS = [
    View("home.py", "Home", ":material/home:", "What HeadScope is and what each view shows."),
    View(
        "model.py",
        "Model",
        ":material/memory:",
        "The model's spec, its accuracy on the dataset chosen in the sidebar, and the current input's top-5 classes.",
    ),
    View(
        "attention.py",
        "Attention",
        ":material/grid_view:",
        "Every head's pattern for the current input, attention distance and neighbourhood strength per head "
        "over a dataset sample, and clusters of attention patterns.",
    ),
    View(
        "importance.py",
        "Head importance",
        ":material/leaderboard:",
        "Which heads matter: single-head ablation and gradient scores side by side, partial pruning of one "
        "head, cumulative pruning curves that check which score is right, and their agreement.",
    ),
    View(
        "circuits.py",
        "Circuits",
        ":material/account_tree:",
        "What a head writes and who reads it: direct logit attribution, activation patching between two inputs, "
        "composition scores between heads and head types.",
    ),
    View(
        "relevance.py",
        "Relevance",
        ":material/highlight:",
        "Which patches or words drove the prediction: rollout, gradient rollout, Chefer's LRP, AttnLRP and "
        "captum's gradient methods, with faithfulness scores to compare them.",
    ),
    View(
        "spectral.py",
        "Spectral",
        ":material/graphic_eq:",
        "Attention as a low-pass filter: high/low-frequency energy per layer, Fourier profiles of feature "
        "maps, a head's frequency response, temperature what-ifs and the activation lab.",
    ),
    View(
        "embedding.py",
        "Class embedding",
        ":material/scatter_plot:",
        "Tokens projected through the classifier layer by layer, identifiability per layer, and "
        "PCA/UMAP/t-SNE maps of the embeddings per layer.",
    ),
    View(
        "stored_runs.py",
        "Runs",
        ":material/storage:",
        "Dataset-scale results computed once (command line or background run) and stored: list, inspect, "
        "download, delete.",
    ),
    View(
        "tour.py",
        "Tour",
        ":material/school:",
        "Guided tours through the views for a lecture, written as TOML files, with a presenter layout.",
    ),
]

# the view that shows each analysis's stored runs (analysis.units names -> view name): the Runs view links to it,
# and a tour step names the runs its view shows (ui.tour)
RUN_VIEWS = {
    "predictions": "model",
    "attention": "attention",
    "importance": "importance",
    **dict.fromkeys(("direct_logit_attribution", "patching", "composition", "head_types"), "circuits"),
    "relevance": "relevance",
    "faithfulness": "relevance",
    "spectral": "spectral",
    "embedding": "embedding",
}
# the link parameters that are options of an analysis's stored run (the unit's option of the same name): a view
# shows the stored run of the options it is set to, and a tour step's state sets them for the runs it starts
RUN_OPTIONS = {"importance": ("ablation",)}


def available_views() -> list[View]:
    """The views whose page file is present, in menu order."""
    return [v for v in VIEWS if v.path.exists()]


def pages() -> list:
    """The st.Page of every available view (Home is the default), as app.py's st.navigation takes them."""
    import streamlit as st

    return [st.Page(str(v.path), title=v.title, icon=v.icon, default=(v.file == "home.py")) for v in available_views()]


def view_path(name: str) -> str:
    """The page file of the view named `name` in links and tours ("attention" -> .../pages/attention.py), as
    st.switch_page takes it; KeyError for a name that is no view."""
    return str({v.name: v for v in available_views()}[name].path)


def route_first() -> None:
    """A view's first statement: when a fresh server's first request /<view> ran the view on its own (see
    use_router), go through app.py before the view's imports (torch and the model code: seconds on a fresh
    server, with nothing on screen)."""
    import streamlit as st

    from ui.state import SIDEBAR_CONTEXT

    if SIDEBAR_CONTEXT not in st.session_state:  # app.py puts it there before it runs a view
        use_router()


def use_router() -> None:
    """Route a view that ran without app.py through app.py. On a fresh server whose first request is /<view>,
    Streamlit's legacy pages/ discovery runs the view on its own although the server's main script
    (`__main__.__file__`, which Streamlit sets to it) is app.py; declaring app.py's navigation (st.navigation,
    public API) switches the server to it, and the rerun lands on the same view through app.py. A view that is
    itself the main script (AppTest.from_file on a page) draws its own sidebar."""
    import streamlit as st

    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main and Path(main).resolve() == APP_SCRIPT:
        st.navigation(pages(), position="hidden")
        st.rerun()
