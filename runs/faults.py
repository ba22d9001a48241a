"""Fault injection for the tests of resuming and of Ray's retries: set $HEADSCOPE_FAULTS to a JSON object of the
Faults fields (a test fixture does). Unset, nothing is injected."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

FAULTS_ENV = "HEADSCOPE_FAULTS"
HOLD_S = 300.0  # how long hold_after_chunks holds a run


@dataclass(frozen=True)
class Faults:
    """fail_after_chunks: a run stops with an error after writing that many new chunks; hold_after_chunks: a run
    waits there (HOLD_S, or until a signal ends the process), so a test signals it at a known point on any machine;
    die_once: a Ray worker exits (as if killed) the first time it reaches one of these chunk starts (a marker file
    in marker_dir remembers it across the restart); always_fail: a Ray worker raises on every attempt at these
    chunk starts."""

    fail_after_chunks: int | None = None
    hold_after_chunks: int | None = None
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

    def after_chunk(self, written: int) -> None:
        """What happens after a run wrote its `written`-th new chunk: an error, a hold, or nothing."""
        if self.fail_after_chunks is not None and written >= self.fail_after_chunks:
            raise RuntimeError(f"stopped after {written} chunk(s) (fault injection)")
        if written == self.hold_after_chunks:
            time.sleep(HOLD_S)
