"""Write requirements.txt: every direct dependency of pyproject.toml pinned to the version installed in this
environment (the one the tests ran with), torch first. Run it after changing pyproject.toml or upgrading:

    . .venv/bin/activate && python scripts/requirements.py

With --floors it prints the floors instead, name==floor for each direct dependency (its lowest allowed version), as
pip constraints: scripts/floors.sh installs them to run the unit tests against the oldest versions pyproject.toml
allows (pip's counterpart of uv's --resolution lowest-direct).

tests/unit/test_layout.py checks that requirements.txt names exactly pyproject.toml's dependencies, each pin
allowed by pyproject.toml's own range, and that each dependency has a floor."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "# The pinned set the tests ran with: pip install -r requirements.txt && streamlit run app.py\n"
    "# Generated from pyproject.toml by `python scripts/requirements.py`; do not edit by hand.\n"
)


def dependencies() -> list[tuple[str, str]]:
    """(name, version range) of each direct dependency in pyproject.toml, torch first."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pairs = [(m.group(1), m.group(2).strip()) for m in (re.match(r"([A-Za-z0-9_.\-]+)(.*)", d) for d in deps) if m]
    return sorted(pairs, key=lambda p: p[0] != "torch")


def floors() -> list[str]:
    """name==floor of each direct dependency: the version its range pins (==) or starts at (>=)."""
    out = []
    for name, spec in dependencies():
        floor = re.search(r"(?:==|>=)\s*([^,;\s]+)", spec)
        if floor is None:
            raise ValueError(f"pyproject.toml: {name} has no floor (>= or ==); give it the oldest version that works")
        out.append(f"{name}=={floor.group(1)}")
    return out


def main() -> None:
    if sys.argv[1:] == ["--floors"]:
        print("\n".join(floors()))
        return
    pins = [f"{name}=={version(name).split('+')[0]}" for name, _ in dependencies()]
    (ROOT / "requirements.txt").write_text(HEADER + "\n".join(pins) + "\n")


if __name__ == "__main__":
    main()
