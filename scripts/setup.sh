# Sourced by scripts/demo and scripts/test: make sure uv and the project's environment exist.
# Needs only Python 3.11+ on the machine; everything else comes from the package registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
elif [ -x "$ROOT/.tools/bin/uv" ]; then
  UV=("$ROOT/.tools/bin/uv")
else
  echo "==> installing uv into .tools/ (one time)"
  python3 -m venv "$ROOT/.tools"
  "$ROOT/.tools/bin/pip" install --quiet uv
  UV=("$ROOT/.tools/bin/uv")
fi
export UV_PYTHON_DOWNLOADS=never

echo "==> installing Python dependencies from uv.lock"
"${UV[@]}" sync --frozen --quiet
export PATH="$ROOT/.venv/bin:$PATH"

circolo compilecatalogs >/dev/null
