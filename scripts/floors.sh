#!/usr/bin/env bash
# The version floors of pyproject.toml, checked: a throwaway venv gets every direct dependency at its floor (pip's
# counterpart of uv's --resolution lowest-direct: the constraints name==floor of `scripts/requirements.py --floors`;
# what they depend on resolves as usual), HeadScope installed editable (`headscope --help` must then work), and runs
# the unit tests. That costs 1 to 2 minutes of install and 5 (a quiet 2-core machine) to 25 (a busy one) of tests, so
# scripts/test.sh runs it only when pyproject.toml changed since it last passed on this machine (a stamp per hash in
# ~/.cache/headscope): a floor moves with pyproject.toml, while code that needs a newer version than its floor is
# found at the next change of pyproject.toml, or by HEADSCOPE_FLOORS=1, which runs it anyway (0 skips it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stamp="${XDG_CACHE_HOME:-$HOME/.cache}/headscope/floors-$(sha256sum pyproject.toml | cut -c1-16)"
case "${HEADSCOPE_FLOORS:-auto}" in
  0) exit 0 ;;
  auto) [ -e "$stamp" ] && exit 0 ;;
esac
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
python3 scripts/requirements.py --floors > "$venv/floors.txt"
echo "floors: the unit tests with $(paste -sd' ' "$venv/floors.txt")"
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -c "$venv/floors.txt" -e ".[test]"
"$venv/bin/headscope" --help > /dev/null
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit
mkdir -p "$(dirname "$stamp")" && touch "$stamp"
