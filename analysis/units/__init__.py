"""The registry of dataset-level analyses: `UNITS` (name -> unit), each with `.Options`, `.per_input` and
`.summarise` (analysis/units/base.py says what a unit is). runs/ runs them, the command line's flags come from
their Options, and the views show their runs."""

from analysis.options import Options, option
from analysis.units.attention import AttentionStatistics
from analysis.units.base import Inputs, RunOptions, Unit
from analysis.units.composition import Composition
from analysis.units.dla import DirectLogitAttribution
from analysis.units.embedding import Embedding
from analysis.units.faithfulness import Faithfulness
from analysis.units.head_types import HeadTypes
from analysis.units.importance import Importance
from analysis.units.patching import Patching
from analysis.units.predictions import Predictions
from analysis.units.relevance import Relevance
from analysis.units.spectral import Spectral

UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Predictions(),
        Importance(),
        Relevance(),
        AttentionStatistics(),
        Faithfulness(),
        Spectral(),
        Embedding(),
        DirectLogitAttribution(),
        Composition(),
        HeadTypes(),
        Patching(),
    )
}


def get_unit(name: str) -> Unit:
    """The unit `name`; ValueError naming the known ones."""
    if name not in UNITS:
        raise ValueError(f"Unknown analysis {name!r}: choose from {', '.join(UNITS)}.")
    return UNITS[name]


__all__ = ["UNITS", "Inputs", "Options", "RunOptions", "Unit", "get_unit", "option"]
