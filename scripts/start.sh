#!/usr/bin/env bash
# Install HeadScope into .venv (torch pinned to the CPU 2.13.0 build) and start the app.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -r requirements.txt
exec streamlit run app.py "$@"
