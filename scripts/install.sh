#!/usr/bin/env bash
# Sourced by start.sh and test.sh: create .venv in the repo root and install HeadScope into it
# (torch pinned to 2.13.0 first, so no other requirement pulls a different build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e ".[test]"  # pyproject.toml: the libraries, and the analyses importable from anywhere
