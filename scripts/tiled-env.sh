#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv that runs a real Tiled server for the
# tests (tiled[server] 0.2.20, bluesky-tiled-plugins 2.0.12, bluesky 1.15.1,
# databroker 2.0.2, ophyd), pinned in scripts/tiled-requirements.txt, and print
# its python as the LAST line of stdout:
#
#     PY=$(bash scripts/tiled-env.sh) && "$PY" scripts/tiled_load.py URL --api-key KEY --detector-dir DIR
#
# Location: ${PACK_STREAM_CACHE:-$HOME/.cache/pack-stream}/tiled-venv, reused while
# the requirements file's sha256 is unchanged. The building is scripts/pyenv.sh's
# (same interpreter choice, locking and fallbacks), pointed at another pin file.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYENV_NAME=tiled-venv \
PYENV_REQUIREMENTS="$here/tiled-requirements.txt" \
PYENV_SMOKE_IMPORTS="tiled.server, tiled.catalog, tiled.client, bluesky_tiled_plugins, bluesky, ophyd.sim, databroker.mongo_normalized, suitcase.mongo_normalized, h5py, pyarrow" \
  exec bash "$here/pyenv.sh"
