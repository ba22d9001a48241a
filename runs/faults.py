"""Fault injection for the tests of resuming and of Ray's retries: set $HEADSCOPE_FAULTS to a JSON object of the
Faults fields (a test fixture does). Unset, nothing is injected."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

FAULTS_ENV = "HEADSCOPE_FAULTS"


@dataclass(frozen=True)
class Faults:
    """fail_after_chunks: a run stops with an error after writing that many new chunks; die_once: a Ray worker
    exits (as if killed) the first time it reaches one of these chunk starts (a marker file in marker_dir
    remembers it across the restart); always_fail: a Ray worker raises on every attempt at these chunk starts."""

    fail_after_chunks: int | None = None
    die_once: tuple[int, ...] = ()
    always_fail: tuple[int, ...] = ()
    marker_dir: str = ""

    @classmethod
    def from_env(cls) -> Faults:
        raw = os.environ.get(FAULTS_ENV)
        if not raw:
            return cls()
        given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(raw).items()}
        return cls(**given)

    @staticmethod
    def env(**fields) -> dict[str, str]:
        """{FAULTS_ENV: the JSON of these fields}, for monkeypatch.setenv or a subprocess's environment."""
        return {FAULTS_ENV: json.dumps(fields)}
