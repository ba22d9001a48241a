"""Typed, validated options: a frozen dataclass whose fields say their default, what they mean and what they
allow. Every dataset-level analysis (analysis.units) and every relevance method (analysis.relevance) has one,
so a misspelt or out-of-range option raises instead of being ignored.

    @dataclass(frozen=True)
    class IGOptions(Options):
        n_steps: int = option(32, "points on the path from the baseline", low=1)

    IGOptions.make(n_stpes=3)  # TypeError: Unknown option 'n_stpes' for ...: valid options are n_steps.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np


def option(
    default: Any,
    doc: str,
    *,
    choices: Collection | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """A field of an Options class: its default, one line of documentation (also the command line's help), and
    what it allows: `choices` (each value, or each item of a tuple, one of them) or a range [low, high]."""
    return dataclasses.field(default=default, metadata={"doc": doc, "choices": choices, "low": low, "high": high})


@dataclass(frozen=True)
class Options:
    """Base of every options class: frozen, typed, validated when made (also when made directly)."""

    label: ClassVar[str] = ""  # what the options are for (the analysis or method), in error messages

    @classmethod
    def make(cls, **given: Any) -> Self:
        """The options with `given` set; TypeError for an unknown name (naming the valid ones), ValueError for a
        value outside what the field allows (saying what it allows)."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in given if k not in valid]
        if unknown:
            raise TypeError(
                f"Unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
                f"{cls.label or cls.__name__}: valid options are {', '.join(valid) or 'none'}."
            )
        return cls(**given)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _checked(f.name, getattr(self, f.name), hints[f.name], f.metadata)
            object.__setattr__(self, f.name, value)

    def params(self) -> dict[str, Any]:
        """The options as plain JSON values (tuples as lists), for a run's manifest and key."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))


def value_type(hint: Any) -> tuple[Any, bool, bool]:
    """(the type of one value, whether the field takes a list of them, whether it may be None) of an Options
    field's annotation, e.g. `tuple[str, ...] | None` -> (str, True, True)."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    many = typing.get_origin(hint) is tuple
    return (typing.get_args(hint)[0] if many else hint), many, optional


def _checked(name: str, value: Any, hint: Any, meta: typing.Mapping) -> Any:
    """`value` as the field's type (a list becomes a tuple, an int a float where a float is asked); raises
    TypeError for a wrong type and ValueError for a value outside the field's choices or range."""
    one, many, optional = value_type(hint)
    if optional and value is None:
        return None
    if many:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"Option {name!r} takes a list, got {value!r}.")
        value = tuple(_of_type(name, v, one) for v in value)
        items = value
    else:
        value = _of_type(name, value, one)
        items = (value,)
    choices, low, high = meta.get("choices"), meta.get("low"), meta.get("high")
    bad = [v for v in items if choices is not None and v not in choices]
    if bad and choices is not None:
        raise ValueError(f"Option {name!r} got {bad[0]!r}: choose from {', '.join(map(str, choices))}.")
    for v in items:
        if (low is not None and v < low) or (high is not None and v > high):
            span = f"{low} to {high}" if None not in (low, high) else f">= {low}" if low is not None else f"<= {high}"
            raise ValueError(f"Option {name!r} got {v!r}: allowed {span}.")
    return value


def _of_type(name: str, value: Any, hint: Any) -> Any:
    if hint is float and isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if hint in (str, bool) and isinstance(value, hint):
        return value
    raise TypeError(f"Option {name!r} takes {getattr(hint, '__name__', hint)}, got {value!r}.")
