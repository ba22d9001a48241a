"""Every link parameter, declared once (ui.links.Param): what it sets and, for a widget's, the widget a view draws
from it with `.draw(...)`. PARAMS is the table of link parameters in docs/links.md."""

from __future__ import annotations

from analysis.faithfulness import method_label
from analysis.relevance import READ_AT
from analysis.spectral import RANK_NORMS
from ui import state
from ui.importance_figures import ablation_label, metric_label
from ui.links import Param, integer, number, switch, tenths
from ui.navigation import VIEWS

OWN_ACTIVATION = "the model's own MLP activation"
PREDICTED = -1  # the target-class option "the predicted class" (not None: a selectbox reads None as no choice)
TAB = "Attention and Spectral: the open tab, by its title"  # one parameter, tab, in two views
LAB_RATE = 4096  # Activation lab: samples over one second, so tones in whole Hz sit on DFT bins


def tone_list(text: str) -> str:
    """A link's tones for the Activation lab: whole numbers of Hz from 1 to below the Nyquist frequency,
    comma-separated (ValueError otherwise)."""
    tones = [integer(t) for t in text.replace(";", ",").split(",") if t.strip()]
    if not tones or any(t != int(t) or not 1 <= t < LAB_RATE // 2 for t in tones):
        raise ValueError(text)
    return ",".join(str(int(t)) for t in tones)


# -- the sidebar ------------------------------------------------------------------------------------------------
VIEW = Param("view", "the view (also the URL's path): " + ", ".join(v.name for v in VIEWS))
MODEL = Param("model", "a built-in model's name, a model folder or a hub id")
DATASET = Param(
    "dataset",
    "the dataset: a bundled set's name, or a folder / table file",
    state.DATASET,
    "selectbox",
    "Dataset",
    "Every dataset-level view (statistics, importance, faithfulness, embeddings) runs on this dataset. Your own "
    "data: an image folder (class sub-folders give labels), a .csv/.tsv/.jsonl/.parquet table, a folder saved with "
    "`datasets`' save_to_disk, or a Hugging Face dataset id in your local cache.",
)
SPLIT = Param("split", "the dataset's split", state.SPLIT, "selectbox", "Split")
INPUT = Param("input", "the dataset input's index (0-based)", state.INDEX, "number_input", lo=0, parse=integer)
TEXT = Param("text", "a typed text (text models; instead of a dataset input)")
LAYER = Param("layer", "the selected head's layer (0-based)")
HEAD = Param("head", "the selected head (0-based)")
SAMPLE_SIZE = Param(
    "n",
    "the view's dataset sample size",
    "",
    "number_input",
    "Dataset sample size",
    lo=1,
    parse=integer,
    args={"step": 16},
)
PRESENT = Param("present", "1 opens the presenter layout")

# -- Attention --------------------------------------------------------------------------------------------------
QUERY = Param("query", "Attention: the query token (0 = CLS)", state.QUERY, parse=integer)
ATTENTION_TAB = Param(
    "tab",
    TAB,
    "attn_tab",
    "tabs",
    options=["Heads of this input", "Distance and strength", "Patterns"],
)
MATRIX = switch(
    "matrix",
    "Attention (images): 1 shows the selected head's full attention matrix",
    "attn_show_matrix",
    "",  # the view's label names the matrix's size
    "Every query's row of this head's attention as a heatmap with each weight on hover (drawn only when shown, so a "
    "head click stays quick).",
)
CLUSTERS = Param(
    "clusters",
    "Attention, Patterns tab: the number of clusters",
    "attn_k",
    "slider",
    "Clusters",
    lo=2,
    hi=12,
    parse=integer,
    args={"value": 6},
)
PATTERN_EMBEDDING = Param(
    "pattern_embedding",
    "Attention, Patterns tab: the patterns' embedding, pca or autoencoder",
    "attn_embedding",
    "radio",
    "Embedding",
    "PCA is quick; the autoencoder (the VA paper's method) trains for a few seconds.",
    {"pca": "PCA", "autoencoder": "autoencoder (torch)"},
)
CLUSTERING = Param(
    "clustering",
    "Attention, Patterns tab: kmeans or agglomerative",
    "attn_clustering",
    "radio",
    "Clustering",
    options={"kmeans": "k-means", "agglomerative": "agglomerative (Ward)"},
)
PATTERN_MAP = Param(
    "pattern_map",
    "Attention, Patterns tab: the 2-D map, pca or umap",
    "attn_projection",
    "radio",
    "2-D map",
    options={"pca": "PCA", "umap": "UMAP"},
)

# -- Head importance --------------------------------------------------------------------------------------------
COMPUTE = Param("compute", "Head importance: 1 computes the scores on the view's sample at once, as Compute does")
SCORES = Param(
    "scores",
    "Head importance: the scores side by side, comma-separated (e.g. accuracy,loss,gradient_norm)",
    "imp_shown",
    "multiselect",
    "Scores side by side",
    many=True,
    args={"format_func": metric_label},
)
QUALITY = Param(
    "quality",
    "Head importance: the metric the pruning curves plot",
    "imp_quality",
    "selectbox",
    "Quality measured by",
    "The metric the partial-pruning and cumulative-pruning curves plot.",
    args={"format_func": metric_label},
)
ABLATION = Param(
    "ablation",
    "Head importance: what a removed head's output becomes (zero, mean or resample)",
    "imp_ablation",
    "selectbox",
    "A removed head's output becomes",
    "zero: 0. mean: the head's output averaged over the inputs per token position (over each batch of a run, over "
    "the figure's inputs for the pruning curves). resample: the head's output on another, seeded input.",
    args={"format_func": ablation_label},
)
COMPARE = Param(
    "compare",
    "Head importance: a second ablation kind whose head ranking is compared with the first's",
    "imp_compare",
    "selectbox",
    "Compare the ranking with",
    args={"format_func": lambda k: "nothing" if k == "" else ablation_label(k)},
)
ITERATIVE = switch(
    "iterative",
    "Head importance: 1 re-scores the heads between pruning steps",
    "imp_iterative",
    "Iterative pruning",
    "Re-estimate every remaining head's importance after each 10% is removed (Michel et al.'s iterative pruning). "
    "About ten times slower.",
)
SEED = Param(
    "seed",
    "Head importance: the random pruning order's seed",
    "imp_seed",
    "number_input",
    "Random-order seed",
    lo=0,
    hi=10_000,
    parse=integer,
    args={"value": 0},
)
CLASS_SCORE = Param(
    "class_score",
    "Head importance: the score shown per class",
    "imp_class_metric",
    "selectbox",
    "Score",
    args={"format_func": metric_label},
)

# -- Relevance --------------------------------------------------------------------------------------------------
RELEVANCE_METHODS = Param(
    "methods",
    "Relevance: the methods shown, comma-separated (e.g. rollout,attnlrp)",
    "rel_methods",
    "multiselect",
    "Methods",
    many=True,
    args={"format_func": method_label},
)
TARGET = Param(
    "target",
    "Relevance: the target class's index (leave out for the predicted class)",
    "rel_target",
    "selectbox",
    "Target class",
    "Explain any class, not only the predicted one (attention and rollout are the same for every class).",
    parse=lambda t: PREDICTED if t == "predicted" else integer(t),
    fmt=lambda c: "predicted" if c == PREDICTED else str(c),
)
SCALE = Param(
    "scale",
    "Relevance: the colour scale, 'per map' or 'shared'",
    "rel_scale",
    "radio",
    "Colour scale",
    "Per map: each map on its own scale, to see its pattern (a diffuse map such as rollout stays visible). Shared: "
    "one scale for all, to compare how concentrated the maps are.",
    ["per map", "shared"],
)
OPACITY = Param(
    "opacity",
    "Relevance (images): the maps' opacity, 0.1 to 1",
    "rel_opacity",
    "slider",
    "Map opacity",
    "Lower it to see the image.",
    lo=0.1,
    hi=1.0,
    parse=tenths,
    args={"value": 0.8, "step": 0.1},
)
UNDER = switch(
    "under",
    "Relevance (images): 1 draws the image under the maps, 0 the maps alone",
    "rel_under",
    "Image under the maps",
    "Off: the maps alone.",
    value=True,
)
RELEVANCE_READ_AT = Param(
    "read_at",
    "Relevance (text): where AttnLRP reads token relevance, words or embedding",
    "rel_read_at",
    "radio",
    "AttnLRP relevance read at",
    "The word embeddings: each word piece's own relevance; the position and token-type embeddings and the embedding "
    "LayerNorm keep their shares (the table under the conservation figure). The embedding output: the relevance of "
    "the whole input vector of each token, those shares included.",
    READ_AT,
    args={"horizontal": True},
)
START = Param(
    "start",
    "Relevance: what the insertion test starts from: blur (images), zero or mean",
    "rel_start",
    "selectbox",
    "Insertion starts from",
    "The input the most relevant tokens are revealed into. The model's probability on this start is the insertion "
    "AUC's floor, shown under the table: a start the model already classifies well makes every map look good.",
)

# -- Spectral ---------------------------------------------------------------------------------------------------
SPECTRAL_TAB = Param(
    "tab",
    TAB,
    "spectral_tab",
    "tabs",
    options=["Low-pass filter", "Heads", "Rank collapse", "Temperature sweep", "Activation lab"],
)
TAU = Param(
    "tau",
    "Spectral: the attention temperature",
    "spectral_tau",
    "select_slider",
    "Attention temperature τ",
    "softmax(QKᵀ / (√d · τ)): τ < 1 sharpens attention, τ > 1 flattens it towards uniform; τ = 1 is the model as "
    "trained. It applies on every tab but the lab.",
    [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0, 100.0],
    parse=number,
    args={"value": 1.0},
)
SCOPE = Param(
    "scope",
    "Spectral: apply the temperature to 'all layers' or 'chosen layers'",
    "spectral_scope",
    "radio",
    "Apply τ to",
    options=["all layers", "chosen layers"],
    args={"horizontal": True},
)
LAYERS = Param(
    "layers",
    "Spectral: the chosen layers, comma-separated",
    "spectral_layers",
    "multiselect",
    "Layers",
    parse=integer,
    many=True,
)
NORM = Param(
    "norm",
    "Spectral: the rank-collapse norm, fro or l1inf",
    "spectral_rank_norm",
    "radio",
    "Rank-collapse norm",
    "Dong et al. define the residual with x = argmin ‖X − 1xᵀ‖₁,∞ (√(max column abs-sum × max row abs-sum)); the "
    "token mean is the minimiser of the Frobenius norm only, so under theirs it would overstate the residual (by 6 "
    "to 27% on digits-vit states). HeadScope finds their minimiser exactly with a few linear programs per matrix: "
    "about 1.5 s per state on digits-vit, tens of seconds on minilm, so it is computed for this input only.",
    RANK_NORMS,
    args={"horizontal": True},
)
POINTS = Param(
    "points",
    "Spectral: the Fourier profile's points, nyquist or park_kim",
    "spectral_points",
    "radio",
    "Frequency points",
    "Park & Kim's code reads the diagonal one step short of the Nyquist corner, at (1 − 2/n)·π per axis on an even "
    "n × n grid (on an odd one, which has no Nyquist bin, to its last bin (1 − 1/n)·π, as here), and draws it on an "
    "axis whose end it calls 1.0π.",
    {
        "nyquist": "to the Nyquist corner (π, π; odd grids: their last bin)",
        "park_kim": "Park & Kim's (to compare with their figures)",
    },
    args={"horizontal": True},
)
ACTIVATION = Param(
    "activation",
    "Spectral, Activation lab: ReLU, GELU, SiLU or the model's own MLP activation",
    "spectral_act",
    "selectbox",
    "Activation",
    options=["ReLU", "GELU", "SiLU", OWN_ACTIVATION],
)
AMPLITUDE = Param(
    "amplitude",
    "Spectral, Activation lab: the tones' amplitude, 0.1 to 5",
    "spectral_amp",
    "slider",
    "Amplitude A",
    lo=0.1,
    hi=5.0,
    parse=tenths,
    args={"value": 2.0, "step": 0.1},
)
TONES = Param(  # its label names the range (the view checks a typed value)
    "tones",
    "Spectral, Activation lab: the tones in Hz, comma-separated",
    "spectral_tones",
    "text_input",
    parse=tone_list,
    args={"value": "8"},
)
ACT_LAYER = Param(
    "act_layer",
    "Spectral, Activation lab: the layer whose MLP activation is used",
    "spectral_act_layer",
    "number_input",
    "Layer",
    lo=0,
    parse=integer,
    args={"value": 0},
)
MLP_BLOCK = Param(
    "mlp_block",
    "Spectral, Activation lab: the block whose MLP activation is read on the current input",
    "spectral_mlp_layer",
    "number_input",
    "Block",
    lo=0,
    parse=integer,
)

# -- Class embedding --------------------------------------------------------------------------------------------
BASELINE = switch(
    "baseline",
    "Class embedding: 1 adds the random-init baseline",
    "emb_baseline",
    "Random-init baseline",
    "The same architecture with freshly initialised weights (seeded): what a network that learned nothing scores. "
    "Its prompt head, if any, uses the random encoder too.",
)
EMBEDDING_WHERE = Param(
    "where",
    "Class embedding: what the classifier reads (resid, attn_out, mlp_out)",
    "emb_where",
    "segmented_control",
    "Read the classifier on",
    "Vilas et al. read the residual stream and the attention / MLP sublayer outputs of every block through the "
    "classifier.",
    {
        "resid": "residual stream after the block",
        "attn_out": "attention sublayer output",
        "mlp_out": "MLP sublayer output",
    },
    args={"default": "resid"},
)
BLOCK = Param(
    "block",
    "Class embedding: the block of the token class map (1-based)",
    "emb_block",
    "slider",
    "Block",
    "The token class map after this block.",
    lo=1,
    parse=integer,
)
PROJECTION = Param(
    "projection",
    "Class embedding: the projection, pca, umap or tsne",
    "emb_method",
    "radio",
    "Projection",
    "PCA is fitted once on all layers together, so positions compare across layers. UMAP and t-SNE are fitted per "
    "layer: axes and distances do not compare across layers.",
    {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"},
    args={"horizontal": True},
)
PROJ_LAYER = Param(
    "proj_layer",
    "Class embedding: the projected layer (0 = embeddings)",
    "emb_layer",
    "slider",
    "Layer (0 = embeddings)",
    lo=0,
    parse=integer,
)

# every parameter and what it sets (a name two views use, such as tab, once)
PARAMS = {p.name: p.sets for p in globals().copy().values() if isinstance(p, Param)}
