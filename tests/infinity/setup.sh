#!/usr/bin/env bash
# The real OpenAI-compatible embedding server for tests/test_remote.py: infinity-emb in its own
# virtual environment (it pins transformers 4.x and sentence-transformers 3.x, which the
# project's own environment must not get). Idempotent: a second run with the server already
# installed does nothing. Usage: tests/infinity/setup.sh [VENV_DIR]   (default: .venv-infinity)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-${CODESEARCH_INFINITY_VENV:-.venv-infinity}}"
INFINITY_VERSION="0.0.78"
if [ -x "$VENV/bin/infinity_emb" ] \
    && compgen -G "$VENV/lib/python3*/site-packages/infinity_emb-$INFINITY_VERSION.dist-info" >/dev/null; then
    exit 0  # already installed
fi
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
# git and the linters never look inside (the folder ignores itself)
echo '*' > "$VENV/.gitignore"
"$VENV/bin/pip" install --quiet --upgrade pip
# torch first and pinned: an unpinned torch (pulled in by infinity-emb[torch]) is a multi-GB
# CUDA build; 2.13.0 is the CPU wheel here.
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet "infinity-emb[server,torch]==$INFINITY_VERSION" torch==2.13.0
"$VENV/bin/infinity_emb" --help >/dev/null
