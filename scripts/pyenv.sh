#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv holding the reference Python tools
# (databroker 1.2.5, databroker-pack, suitcase-*, bluesky, ophyd, ...) pinned in
# scripts/python-requirements.txt, and print the venv's python as the LAST line
# of stdout.  Everything else goes to stderr, so this works:
#
#     PY=$(bash scripts/pyenv.sh) && "$PY" scripts/make_catalog.py OUT
#
# Location: ${PACK_STREAM_CACHE:-$HOME/.cache/pack-stream}/venv
# Other pinned environments reuse this script through three variables (see
# scripts/tiled-env.sh): PYENV_NAME (directory under the cache, default venv),
# PYENV_REQUIREMENTS (pin file) and PYENV_SMOKE_IMPORTS (modules that must import).
# Interpreter: $PACK_STREAM_PYTHON if set, else python3.11, else python3 (must be 3.11).
# Reuse: the venv holds a marker with the sha256 of the requirements file; when it
# matches (and the venv's python runs) nothing is installed.  When it differs the
# venv is rebuilt from scratch.  Concurrent callers are serialised with flock.
# Needs only python3.11 with pip; if the venv module (or ensurepip) is missing, as
# on Debian without python3-venv, virtualenv is installed with pip into the cache
# (pip --target, which PEP 668 "externally managed" Pythons allow) and used instead.
set -euo pipefail

log() { printf 'pyenv.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
req="${PYENV_REQUIREMENTS:-$script_dir/python-requirements.txt}"
name="${PYENV_NAME:-venv}"
smoke="${PYENV_SMOKE_IMPORTS:-databroker, databroker_pack, suitcase.msgpack, suitcase.jsonl, suitcase.mongo_normalized, bluesky, ophyd.sim, intake, msgpack_numpy, h5py, tifffile, hdf5plugin, area_detector_handlers.handlers}"
[[ -f $req ]] || die "missing $req"

cache="${PACK_STREAM_CACHE:-${HOME:?HOME is not set; set PACK_STREAM_CACHE}/.cache/pack-stream}"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
venv="$cache/$name"
marker="$venv/.pack-stream-requirements.sha256"

# --- pick the base interpreter ------------------------------------------------
pick_python() {
  local c
  if [[ -n ${PACK_STREAM_PYTHON:-} ]]; then
    command -v "$PACK_STREAM_PYTHON" >/dev/null 2>&1 || die "PACK_STREAM_PYTHON=$PACK_STREAM_PYTHON not found"
    echo "$PACK_STREAM_PYTHON"
    return
  fi
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$c"
      return
    fi
  done
  die "Python 3.11 not found (tried python3.11, python3); set PACK_STREAM_PYTHON"
}

sha256_of() {
  "$1" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$2"
}

venv_ok() {
  [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1
}

# --- serialise concurrent callers ------------------------------------------------
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/$name.lock"
  flock 9
fi

base_py=$(pick_python)
want=$(sha256_of "$base_py" "$req")

if venv_ok && [[ -f $marker ]] && [[ $(<"$marker") == "$want" ]]; then
  log "reusing $venv (requirements sha256 $want)"
  echo "$venv/bin/python"
  exit 0
fi

# --- (re)build --------------------------------------------------------------------
start=$SECONDS
if [[ -e $venv ]]; then
  if [[ -f $venv/pyvenv.cfg ]]; then
    log "requirements changed or venv incomplete: rebuilding $venv"
    rm -rf -- "$venv"
  else
    die "$venv exists but is not a virtualenv (no pyvenv.cfg); remove it or set PACK_STREAM_CACHE"
  fi
fi

log "creating $venv with $base_py ($("$base_py" -c 'import sys; print(sys.version.split()[0])'))"
if ! "$base_py" -m venv "$venv" >&2 2>&1 || ! [[ -x $venv/bin/python ]] ||
   ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  log "python -m venv unavailable or without pip; falling back to virtualenv"
  rm -rf -- "$venv"
  boot="$cache/virtualenv-bootstrap"
  if ! PYTHONPATH="$boot" "$base_py" -c 'import virtualenv' >/dev/null 2>&1; then
    rm -rf -- "$boot"
    "$base_py" -m pip install --disable-pip-version-check --no-input --quiet \
      --target "$boot" virtualenv >&2 ||
      die "could not install virtualenv with pip"
  fi
  PYTHONPATH="$boot" "$base_py" -m virtualenv --quiet "$venv" >&2 ||
    die "virtualenv failed to create $venv"
fi

log "installing pinned packages from $req"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
  --quiet -r "$req" >&2 ||
  die "pip install failed (venv left without marker; rerun to retry)"

# smoke test before declaring the venv good (ophyd.sim mkdtemp()s at import:
# point TMPDIR at a scratch dir that is removed afterwards)
scratch=$(mktemp -d)
TMPDIR="$scratch" "$venv/bin/python" -c "import $smoke" >&2 ||
  { rm -rf -- "$scratch"; die "installed packages fail to import"; }
rm -rf -- "$scratch"

printf '%s\n' "$want" >"$marker"
log "ready in $((SECONDS - start))s: $venv"
echo "$venv/bin/python"
