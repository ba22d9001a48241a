"""Pure analyses: tensors/arrays in, arrays/DataFrames out. Never imports streamlit.

`from analysis import UNITS`: the dataset-level analyses as units (analysis/units), imported on first use so that
`import analysis.attention` stays light."""


def __getattr__(name: str):
    if name == "UNITS":
        from analysis.units import UNITS

        return UNITS
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
