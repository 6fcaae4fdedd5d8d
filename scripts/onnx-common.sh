# Sourced by check-onnx.sh and bench-onnx.sh: a cached venv with $PKGS (pinned, rebuilt when the
# pins change), daad's binaries, a temporary folder and `quiet`. Needs TAG (the messages' prefix,
# also the venv's name) and PKGS set before sourcing; sets PY, daad, reference and tmp.
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/daad-${TAG#check-}"
stamp="$VENV/.daad-pins"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PKGS[*]}" ]; then
  echo "$TAG: installing ${PKGS[*]} into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
  echo "${PKGS[*]}" > "$stamp"
fi
PY="$VENV/bin/python"

cargo build -q --workspace --bin daad --example reference
bin="${CARGO_TARGET_DIR:-target}/debug"
daad="$bin/daad" reference="$bin/examples/reference"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
quiet() { # runs "$@" with its output kept in a log that is shown only on failure
  if ! "$@" > "$tmp/log" 2>&1; then cat "$tmp/log" >&2; echo "$TAG: FAIL $*" >&2; exit 1; fi
}
