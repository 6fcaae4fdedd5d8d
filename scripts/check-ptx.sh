#!/usr/bin/env bash
# Compiles every CUDA kernel of daad-memory to PTX with a CPU-only nvcc from PyPI, so a broken
# kernel fails CI on machines without a GPU or a CUDA install.
#   bash scripts/check-ptx.sh            (first run: ~1-2 min of pip downloads, then seconds)
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/daad-nvcc and is reused. Versions are pinned
# to one CUDA 13.0 release (nvcc, nvvm, crt and cccl must match; see docs/CUDA notes).
# Exit status: non-zero on any compile error.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${XDG_CACHE_HOME:-$HOME/.cache}/daad-nvcc"
PKGS=(nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85)
ARCH="${DAAD_PTX_ARCH:-sm_80}"

find_root() { ls -d "$VENV"/lib/python3*/site-packages/nvidia/cu13 2>/dev/null | head -1; }

root="$(find_root || true)"
stamp="$VENV/.daad-pins"
if [ -z "$root" ] || [ ! -x "$root/bin/nvcc" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PKGS[*]}" ]; then
  echo "check-ptx: installing ${PKGS[*]} into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
  echo "${PKGS[*]}" > "$stamp"
  root="$(find_root)"
fi
export PATH="$root/bin:$PATH" CUDA_ROOT="$root" CUDA_PATH="$root"

shopt -s nullglob
kernels=(crates/daad-memory/kernels/*.cu)
if [ ${#kernels[@]} -eq 0 ]; then
  echo "check-ptx: no kernels found under crates/daad-memory/kernels" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
for k in "${kernels[@]}"; do
  out="$tmp/$(basename "${k%.cu}").ptx"
  if nvcc -ptx -arch="$ARCH" -O3 -Werror all-warnings -o "$out" "$k"; then
    echo "check-ptx: ok   $k ($(grep -c '^.visible .entry' "$out") kernels, $ARCH)"
  else
    echo "check-ptx: FAIL $k" >&2
    status=1
  fi
done
exit $status
