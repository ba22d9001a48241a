"""Write requirements.txt: every direct dependency of pyproject.toml pinned to the version installed in this
environment (the one the tests ran with), torch first. Run it after changing pyproject.toml or upgrading:

    . .venv/bin/activate && python scripts/requirements.py

tests/unit/test_layout.py checks that requirements.txt names exactly pyproject.toml's dependencies, each pin
allowed by pyproject.toml's own range."""

from __future__ import annotations

import re
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


def main() -> None:
    pins = [f"{name}=={version(name).split('+')[0]}" for name, _ in dependencies()]
    (ROOT / "requirements.txt").write_text(HEADER + "\n".join(pins) + "\n")


if __name__ == "__main__":
    main()
