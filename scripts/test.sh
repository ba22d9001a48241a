#!/usr/bin/env bash
# Install HeadScope into .venv, check lint, format and types, and run the whole test suite.
set -euo pipefail
. "$(dirname "$0")/install.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
ruff check . && ruff format --check . && mypy  # lint, format and types (pyproject.toml) before the tests
bash scripts/floors.sh  # the unit tests at pyproject.toml's version floors, when pyproject.toml changed
python -m pytest -q "$@"
