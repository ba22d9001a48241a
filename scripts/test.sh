#!/usr/bin/env bash
# Install HeadScope into .venv and run the whole test suite.
set -euo pipefail
. "$(dirname "$0")/install.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest -q "$@"
