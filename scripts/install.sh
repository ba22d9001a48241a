#!/usr/bin/env bash
# Sourced by start.sh and test.sh: create .venv in the repo root and install HeadScope into it (torch pinned to
# 2.13.0 first, so no other requirement pulls a different build). The install runs again only when
# pyproject.toml changed since the last one (its hash is kept in .venv/.installed); HEADSCOPE_REINSTALL=1 forces it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "${HEADSCOPE_REINSTALL:-0}" = 1 ] || [ "$(cat .venv/.installed 2>/dev/null)" != "$stamp" ]; then
  pip install -q torch==2.13.0
  pip install -q -e ".[test]"  # pyproject.toml: the libraries, and the analyses importable from anywhere
  echo "$stamp" > .venv/.installed
fi
