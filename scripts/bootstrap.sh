# Shared by scripts/run and scripts/test: a virtual environment in .venv with
# Herd installed into it. Sourced, not executed.
set -euo pipefail

HERD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HERD_VENV:-$HERD_ROOT/.venv}"

pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Herd needs Python 3.11 or newer on PATH" >&2
  return 1
}

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(pick_python)" -m venv "$VENV"
  fi
  # Reinstall only when pyproject.toml changed since the last install.
  local stamp="$VENV/.herd-installed-$extras"
  if [ ! -f "$stamp" ] || [ "$HERD_ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$HERD_ROOT[$extras]"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
