"""Spectral view: attention as a low-pass filter over tokens, Fourier profiles of feature maps, a head's
frequency response, rank collapse, attention-temperature what-ifs and the activation lab (the Spectral section of
the methods document under docs/)."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import numpy as np
import pandas as pd
import streamlit as st

from analysis.spectral import (
    STREAMS,
    WHATIF,
    activation_response,
    model_activation,
    park_kim_points,
    temperatures,
)
from analysis.units.spectral import PER_INPUT as SPECTRAL_PER_INPUT
from ui import cache, links, state
from ui import spectral_figures as sf
from ui.cell_picker import cell_picker, head_grid
from ui.framing import guided, show_figure, show_head_chart
from ui.links import stop_view
from ui.params import (
    ACT_LAYER,
    ACTIVATION,
    AMPLITUDE,
    LAB_RATE,
    LAYERS,
    MLP_BLOCK,
    NORM,
    OWN_ACTIVATION,
    POINTS,
    SCOPE,
    SPECTRAL_TAB,
    TAU,
    TONES,
)
from ui.pickers import head_picker, sample_size_picker
from ui.sidebar import no_model_message, page_context
from ui.stored import background_panel, run_label, stored_toggle
from ui.tabs import lazy_tabs

SWEEP = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 16.0)
LENGTHS = (4, 8, 16, 32, 64, 128)

chosen = page_context()
st.title("Spectral")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen  # a PageContext from here on, in the functions below too

model, spec = ctx.model, ctx.model.spec
L, H = spec.n_layers, spec.n_heads
is_image = spec.grid is not None
st.caption(
    "Attention averages tokens: it keeps their mean (the DC part) and damps what differs between them (the "
    "high-frequency HC part), while MLPs and skip connections put the differences back. The figures measure "
    "this for the current input (solid lines) and a sample of the sidebar's dataset (dashed), and the temperature "
    "slider shows what sharper (τ < 1) or flatter (τ > 1) attention does to every one of them."
)

ds = ctx.dataset
with st.columns(3)[0]:
    n = sample_size_picker(len(ds), 32 if is_image else 24, key="spectral_n")
st.caption(ctx.sample_note(n, "Sample (dashed lines)"))
sample, sample_key = model.prepare(ds.sample(n).inputs), f"{ds.key}/sample{n}"
found, stored = stored_toggle(ctx, "spectral", "Dashed lines at τ = 1 from the {run}", "spectral_use_stored")
if found is None:
    background_panel(ctx, "spectral", "the spectral metrics")
# stored: the run the dashed lines come from (None: the sample's)


def hc_dc_section(cur: dict, smp: dict | None) -> None:
    st.subheader("High- vs low-frequency energy per layer")
    current = {k: cur[f"{k}_ratio"][:, 0] for k in STREAMS}
    mean = {k: smp[f"{k}_ratio"].mean(1) for k in STREAMS} if smp else None
    rows = [
        {
            "stream": STREAMS[k],
            "layer": (i - 1 if k == "resid" else i),
            "input": float(v),
            "sample_mean": float(mean[k][i]) if mean else np.nan,
        }
        for k in STREAMS
        for i, v in enumerate(current[k])
    ]
    show_figure(
        sf.hc_dc_figure(current, mean),
        "‖HC‖/‖DC‖ of the token features after each block (emb = embeddings): lower means the tokens are "
        "closer to their mean. Attention outputs (red) usually sit below MLP outputs (green), which bring high "
        "frequencies back; solid = this input, dashed = sample mean.",
        pd.DataFrame(rows),
        "hc_dc",
        key="spectral_hc_dc",
    )


def fourier_section(cur: dict, smp: dict | None) -> None:
    st.subheader("Fourier profile of the feature maps (Park & Kim)")
    if not is_image:
        st.info(
            f"{ctx.model_name} reads text: its tokens form a sequence, not a patch grid, so the 2-D Fourier "
            "profile and feature-map variance do not apply. The 1-D analyses over token positions below do."
        )
        return
    src = smp or cur
    prof, freq = src["profile"].mean(1), src["profile_freq"]
    labels, kinds = list(src["state_labels"]), list(src["state_kinds"])
    theirs = POINTS.draw() == "park_kim"
    if theirs:
        axis, prof = park_kim_points(freq, prof)
        end_freq, freq = float(freq[len(axis) - 1]), axis
        x_title = f"frequency (Park & Kim's axis: 1 = {end_freq:.2f}π per axis)"
        end, end_text = "their end", f"their end point ({end_freq:.2f}π per axis)"
    else:
        x_title, end, end_text = sf.diagonal_end(float(freq[-1]))
    left, right = st.columns(2)
    with left:
        show_figure(
            sf.fourier_profile_figure(freq, prof, labels, x_title=x_title),
            "relative log amplitude of the patch feature maps along the diagonal of their 2-D spectrum, from 0 "
            f"to {end_text}"
            + ", one line per sublayer from shallow (dark) to deep (yellow); lower at the end = fewer fine details.",
            pd.DataFrame(prof, index=labels, columns=[f"{f:.2f}" for f in freq]).reset_index(names="state"),
            "fourier_profile",
            key="spectral_fourier",
        )
    with right:
        data = pd.DataFrame(
            {
                "state": labels,
                "kind": kinds,
                "delta_log_amplitude_at_end": prof[:, -1],
                "feature_map_variance": src["variance"].mean(1),
            }
        )
        show_figure(
            sf.endpoint_figure(prof[:, -1], src["variance"].mean(1), labels, kinds, end=end),
            f"top: each line's value at {end_text}, after every sublayer; bottom: feature-map "
            "variance. Grey bands are attention sublayers: attention lowers the high frequencies, MLPs raise them "
            "(a sawtooth).",
            data,
            "fourier_endpoint",
            key="spectral_endpoint",
        )
    st.caption(f"Mean over {src['profile'].shape[1]} input(s) and all channels.")


def head_section(cur: dict, temps: tuple[float, ...]) -> None:
    st.subheader("A head's frequency response")
    hf = cur["hf_gain"][:, 0]  # [L, H]
    sel = state.selected_head()
    sel = (min(sel[0], L - 1), min(sel[1], H - 1))
    left, right = st.columns([2, 3])
    with left:
        table = pd.DataFrame(hf, columns=[f"head {h}" for h in range(H)]).rename_axis("layer").reset_index()
        show_head_chart(
            lambda: head_grid(hf, "high-frequency gain (click a head)", zmin=0, zmax=max(1.0, float(hf.max()))),
            (ctx.model_key, ctx.input_key, temps),
            sel,
            "mean gain of each head above π/2 on this input: near 0 = low-pass (the head averages), near 1 = "
            "passes detail through (e.g. attends to itself or a neighbour).",
            table,
            "high_frequency_gain",
            key="spectral_head_grid",
        )
    with right:
        l, h = head_picker(L, H, key="spectral_head", badge=ctx.head_type)
        st.caption(
            f"Layer {l}, head {h} on the current input: stable rank {cur['stable_rank'][l, 0, h]:.2f}, "
            f"effective rank {cur['effective_rank'][l, 0, h]:.2f} of {cur['singular'].shape[-1]} tokens; "
            f"G(0) = {cur['gain'][l, 0, h, 0]:.3f} (a row-stochastic matrix passes DC)."
        )
    head = {k: cur[k][l, 0, h] for k in ("gain", "singular", "eigenvalues")}
    head["freq"] = cur["freq"]
    gain_guide = (
        "left: how much of each token-position frequency the head lets through (red; the layer's other heads in "
        "grey): 1 at frequency 0 always, a quick drop = low-pass"
    )
    eigen_guide = (
        "the eigenvalues of its attention matrix with the unit circle: one sits at 1 (the DC mode), and the closer "
        "the rest are to 0, the faster repeated application collapses tokens to their mean"
    )
    figure = sf.head_response_figure(cur["freq"], head["gain"], cur["gain"][l, 0], head["eigenvalues"], f"L{l} H{h}")
    name = f"head_L{l}H{h}_response"
    if not is_image:
        show_figure(figure, f"{gain_guide}; right: {eigen_guide}.", head, name, key="spectral_head_response")
        st.info("Text has no patch grid, so there is no 2-D response image; the gain is over token positions.")
        return
    head["response_2d"] = cur["response_2d"][l, 0, h]
    guide = (
        f"{gain_guide}; middle: {eigen_guide}; right: |fft2| of its attention over the patch grid, averaged over "
        "queries, DC in the centre (a bright centre only = spatial averaging; energy at the edges = sharp local "
        "attention)."
    )
    with guided(guide, head, name, "spectral_head_response"):  # one guide and download for the chart and picture
        chart, picture = st.columns([2, 1], vertical_alignment="center")
        with chart:
            show_figure(figure, "", None, name, key="spectral_head_response")
        with picture:
            cell_picker(
                sf.response_2d_picture(head["response_2d"], f"L{l} H{h}"),
                None,
                "spectral_head_2d",
                name=f"head_L{l}H{h}_2d_response",
            )


def rank_section(cur: dict, temps: tuple) -> None:
    st.subheader("Rank collapse and the rank of attention")
    variants = st.multiselect(
        "What-if forwards",
        list(WHATIF),
        default=list(WHATIF),
        key="spectral_whatif",
        help="Remove the skip connections and/or the MLPs in the forward (hooks on every "
        "block). Dong et al.: a pure attention stack loses rank doubly exponentially; "
        "skips keep it up.",
    )
    norm = NORM.draw()
    left, right = st.columns(2)
    with left:
        if not variants:
            st.warning("Pick at least one what-if forward to draw the rank-collapse curves.")
        else:
            exact = norm == "l1inf"
            src_key, src = (ctx.input_key, ctx.batch) if exact else (sample_key, sample)
            ratios = {
                k: v.mean(1)
                for k, v in cache.spectral_whatif(
                    ctx.model_key, src_key, temps, tuple(variants), norm, model, src
                ).items()
            }
            show_figure(
                sf.rank_collapse_figure(ratios, norm),
                "distance of the residual stream from rank one (every token the same), per layer, "
                + ("on this input" if exact else "mean over the sample")
                + ": 'attention only' falls towards 0, skips and MLPs keep the tokens apart.",
                pd.DataFrame(ratios).rename_axis("layer_plus_1").reset_index(),
                "rank_collapse",
                key="spectral_rank",
            )
    with right:
        stable, effective = cur["stable_rank"][:, 0], cur["effective_rank"][:, 0]
        data = pd.DataFrame(
            {
                "layer": np.repeat(np.arange(L), H),
                "head": np.tile(np.arange(H), L),
                "stable_rank": stable.ravel(),
                "effective_rank": effective.ravel(),
            }
        )
        show_figure(
            sf.attention_rank_figure(stable, effective, state.selected_head()),
            "stable rank ‖A‖²_F/‖A‖²₂ and effective rank exp(entropy of the singular values) of each head's "
            "attention on this input (dots; line = head mean, red circle = selected head): low = few "
            "patterns, near uniform attention has rank 1.",
            data,
            "attention_rank",
            key="spectral_arank",
        )


def sweep_section(tau: float, layers: tuple | None) -> None:
    st.subheader("Temperature sweep")
    src_key, src = sample_key, sample
    sw = cache.spectral_sweep(ctx.model_key, src_key, SWEEP, layers, model, src)
    data = pd.DataFrame(
        {
            "tau": sw["taus"],
            "attention_entropy": sw["entropy"].mean(1),
            "rank_last_layer": sw["rank"][:, -1],
            "agreement": sw["agreement"],
            **{f"resid_hc_dc_block{l}": sw["resid_ratio"][:, l + 1] for l in range(L)},
        }
    )
    show_figure(
        sf.temperature_sweep_figure(sw, tau),
        f"the same metrics for τ from {SWEEP[0]:g} to {SWEEP[-1]:g} on the chosen layers (red line = the "
        "slider): flatter attention (large τ) means entropy → 1, less high frequency and lower rank, and "
        "predictions that drift from the model's.",
        data,
        "temperature_sweep",
        key="spectral_sweep",
    )


def length_section(tau: float, layers: tuple | None) -> None:
    st.subheader("Length collapse")
    try:
        frames = [cache.spectral_length_collapse(ctx.model_key, ds.key, 1.0, None, LENGTHS, model, ds)]
        if any(t != 1.0 for t in temperatures(tau, layers, L)):
            frames.append(cache.spectral_length_collapse(ctx.model_key, ds.key, tau, layers, LENGTHS, model, ds))
    except ValueError as e:
        st.info(f"Length collapse cuts the texts of {ds.name} into windows of up to {max(LENGTHS)} words: {e}")
        return
    df = pd.concat(frames, ignore_index=True)
    show_figure(
        sf.length_collapse_figure(df),
        f"mean cosine similarity between the sentence embeddings of different stretches of {ds.name} "
        "text, by length: rising with length = longer inputs collapse towards each other (Zhou et al. 2024); "
        "the slider's τ (red) against τ = 1 (blue, dashed).",
        df,
        "length_collapse",
        key="spectral_length",
    )


def temperature_controls() -> tuple[float, tuple | None]:
    """The temperature widgets; returns (τ, the layers it applies to: None = all)."""
    st.subheader("Attention temperature")
    c1, c2, c3 = st.columns([3, 2, 3])
    tau = TAU.draw(c1)
    scope = SCOPE.draw(c2)
    layers = None
    if scope == "chosen layers":
        layers = tuple(sorted(LAYERS.draw(c3, options=list(range(L)), default=[L - 1])))
        if not layers:
            st.warning("No layer chosen, so τ applies nowhere: pick at least one layer.")
    return tau, layers


@links.fragment
def temperature_panel(tab: str, tau: float, layers: tuple | None) -> None:
    """A tab's figures at temperature τ on `layers` (None = all; a click in it reruns only this panel)."""
    temps = tuple(temperatures(tau, layers, L))
    if tab == "Temperature sweep":
        if layers != ():
            sweep_section(tau, layers)
        if not is_image:
            length_section(tau, layers)
        return
    cur = cache.spectral_metrics(ctx.model_key, ctx.input_key, temps, True, model, ctx.batch)
    if tab == "Heads":
        head_section(cur, temps)
    elif tab == "Rank collapse":
        rank_section(cur, temps)
    else:
        if stored is not None and all(t == 1.0 for t in temps):  # the stored run is of the model as trained
            whole = cache.stored_run(str(stored.root), stored.manifest.updated).arrays()
            smp = {k: np.moveaxis(v, 0, 1) for k, v in whole.items() if k in SPECTRAL_PER_INPUT}
            smp |= {k: cur[k] for k in ("profile_freq", "state_labels", "state_kinds") if k in cur}
            st.caption(f"Dashed lines: the {run_label(stored)}.")
        else:
            smp = cache.spectral_metrics(ctx.model_key, sample_key, temps, False, model, sample)
        hc_dc_section(cur, smp)
        fourier_section(cur, smp)


@links.fragment
def activation_lab() -> None:
    st.subheader("Activation lab")
    st.caption(
        "Feed a pure tone (or a sum of tones) through an activation function and look at its spectrum: a "
        "nonlinearity creates DC and harmonics. ReLU, GELU and SiLU are x/2 plus an even function, so they "
        "add DC and even harmonics only; the diamonds mark the exact values."
    )
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    choice = ACTIVATION.draw(c1)
    amp = AMPLITUDE.draw(c2)
    text = TONES.draw(c3, label=f"Tones in Hz (whole numbers, 1–{LAB_RATE // 2 - 1}, comma-separated)")
    layer = int(ACT_LAYER.draw(c4, hi=L - 1, disabled=choice != OWN_ACTIVATION))
    try:
        tones = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        st.error(f"Could not read the tones {text!r}: type numbers separated by commas, e.g. 8 or 5, 12.")
        return
    try:
        r = activation_response(
            model_activation(model, layer) if choice == OWN_ACTIVATION else choice, amp, tones, fs=LAB_RATE, n=LAB_RATE
        )
    except ValueError as e:
        st.error(f"{e} Type tones as whole numbers of Hz between 1 and {LAB_RATE // 2 - 1}, e.g. 8 or 5, 12.")
        return
    name = f"L{layer} act" if choice == OWN_ACTIVATION else choice
    f0 = min(tones)
    left, right = st.columns(2)
    with left:
        show_figure(
            sf.waveform_figure(r["t"], r["x"], r["y"], name, 3, f0),
            "the input tone(s) (grey) and what the activation makes of them (red), first three periods.",
            pd.DataFrame({"t": r["t"], "x": r["x"], "y": r["y"]}),
            "activation_waveform",
            key="spectral_wave",
        )
    with right:
        top = min(LAB_RATE / 2, max(9 * f0, 3 * max(tones)))
        show_figure(
            sf.activation_spectrum_figure(r["freq"], r["spectrum"], r["harmonics"], top),
            "one-sided amplitude spectrum 2/N |FFT| (1/N at DC): bars at the tones and the new DC and "
            "harmonics; diamonds = analytic values (single tone, named function).",
            r["harmonics"],
            "activation_harmonics",
            key="spectral_spec",
        )
    if choice == OWN_ACTIVATION or len(tones) > 1:
        st.caption("Analytic values are marked for ReLU, GELU and SiLU with a single tone only.")
    with st.expander("DC and harmonics: measured vs analytic"):
        st.dataframe(
            r["harmonics"].style.format({"frequency": "{:g}", "measured": "{:.5f}", "analytic": "{:.5f}"}),
            hide_index=True,
            width="stretch",
        )

    st.markdown("**Inside the model:** the same activation on the current input, along the token axis.")
    acts = cache.spectral_mlp_activation(ctx.model_key, ctx.input_key, model, ctx.batch)
    left, right = st.columns(2)
    with left:
        l = int(MLP_BLOCK.draw(hi=L - 1, value=L - 1))
        rel = {f"activation {k}": acts[k][l] / acts[k][l][0] for k in ("input", "output")}
        show_figure(
            sf.token_spectrum_figure(acts["freq"], rel),
            f"amplitude over token-position frequencies of block {l}'s MLP activation relative to its DC, "
            "averaged over channels: the output (red) below the input (grey) = the nonlinearity moved "
            "energy into DC, above = it removed DC"
            + (" (patch tokens in row order: peaks at multiples of 2/w come from the grid rows)." if is_image else "."),
            {k: acts[k] for k in ("freq", "input", "output")},
            "mlp_activation_spectrum",
            key="spectral_mlp_spec",
        )
    with right:
        table = pd.DataFrame(
            {
                "block": np.arange(L),
                "HC/DC of the input": acts["input_ratio"],
                "HC/DC of the output": acts["output_ratio"],
            }
        )
        st.caption(
            "HC/DC of every block's MLP activation input and output on the current input: a lower output "
            "ratio means the nonlinearity moved energy into DC; a higher one means it clipped away a shared "
            "(negative) offset that the input's DC carried."
        )
        st.dataframe(table, hide_index=True, width="stretch")


# lazy tabs (ui.tabs.lazy_tabs): a tab runs only once opened, and the opened tabs stay drawn while the user
# switches between them; the temperature widgets sit above the tabs, so a step redraws the open tab's figures only
for param in (SPECTRAL_TAB, TAU, SCOPE, NORM) + ((POINTS,) if is_image else ()):  # text: no Fourier points
    param.bind()
LAYERS.bind(options=list(range(L)))
if "spectral_layers" in st.session_state:  # kept while "all layers" hides its widget
    st.session_state["spectral_layers"] = st.session_state["spectral_layers"]


@links.fragment
def tabbed() -> None:
    """The temperature and the tabs in a fragment: opening a tab or a temperature step reruns only this, not the
    sidebar and the page above."""
    tau, layers = temperature_controls()
    where = "every layer" if layers is None else "no layer" if not layers else "layer(s) " + ", ".join(map(str, layers))
    st.caption(f"Every tab but the lab is drawn at **τ = {tau:g}** on {where} (the other layers keep τ = 1).")
    tabs, open_tab, shown = lazy_tabs(SPECTRAL_TAB, (ctx.model_key, ds.key), kept=SPECTRAL_TAB.values())
    for name in shown:
        with tabs[name]:
            if name == "Activation lab":
                activation_lab()
            else:
                temperature_panel(name, tau, layers)


tabbed()
