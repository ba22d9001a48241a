#!/usr/bin/env bash
# Install HeadScope into .venv and start the app.
set -euo pipefail
. "$(dirname "$0")/install.sh"
exec streamlit run app.py "$@"
