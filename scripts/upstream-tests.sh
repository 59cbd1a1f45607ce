#!/usr/bin/env bash
# Run databroker-pack's own test suite (vendored in test/upstream/databroker_pack_tests,
# v0.3.1) against a pair of databroker-pack / databroker-unpack commands:
#
#   bash scripts/upstream-tests.sh pack-stream [PYTEST ARGS...]  # pack-stream's drop-ins (bin/)
#   bash scripts/upstream-tests.sh python      [PYTEST ARGS...]  # Python's own, from the pinned venv
#
# The suite's CLI calls run `databroker-pack` from PATH: in pack-stream mode a fresh
# directory holding links to bin/databroker-pack and bin/databroker-unpack comes first
# on PATH, and test/upstream/dropin_plugin.py sends conftest's unpack_inplace through
# the drop-in databroker-unpack. Needs `npm run build` first (pack-stream mode) and the
# venv of scripts/pyenv.sh; pytest is installed (pinned, test/upstream/requirements.txt)
# into its own directory in the cache, not into the venv. Catalogs are unpacked into a
# temporary XDG_DATA_HOME, never the user's.
set -euo pipefail
mode=${1:?usage: upstream-tests.sh pack-stream|python [pytest args]}
shift
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
up="$repo/test/upstream"
py=$(bash "$repo/scripts/pyenv.sh" | tail -n 1)
venv_bin=$(dirname "$py")
cache="${PACK_STREAM_CACHE:-$HOME/.cache/pack-stream}"
req="$up/requirements.txt"
sum=$("$py" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$req")
pylib="$cache/pytest-$sum"
if [[ ! -f $pylib/.done ]]; then
  echo "upstream-tests: installing pytest into $pylib" >&2
  rm -rf "$pylib"
  "$py" -m pip install --disable-pip-version-check --quiet --no-deps --target "$pylib" -r "$req" >&2
  touch "$pylib/.done"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case $mode in
  pack-stream)
    [[ -f $repo/dist/cli/main.js ]] || { echo "upstream-tests: run npm run build first" >&2; exit 2; }
    mkdir "$work/bin"
    ln -s "$repo/bin/databroker-pack.cjs" "$work/bin/databroker-pack"
    ln -s "$repo/bin/databroker-unpack.cjs" "$work/bin/databroker-unpack"
    export PATH="$work/bin:$venv_bin:$PATH"
    plugin=(-p dropin_plugin)
    ;;
  python)
    export PATH="$venv_bin:$PATH"
    plugin=()
    ;;
  *) echo "upstream-tests: unknown mode '$mode' (pack-stream or python)" >&2; exit 2 ;;
esac
# intake only finds catalog files added later in a directory that existed when databroker was imported.
export XDG_DATA_HOME="$work/data"
mkdir -p "$XDG_DATA_HOME/intake"
export PYTHONPATH="$pylib:$up${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
echo "upstream-tests: databroker-pack is $(command -v databroker-pack)" >&2
cd "$up"
exec "$py" -m pytest -p no:cacheprovider "${plugin[@]}" --rootdir "$up" -rs "$@" databroker_pack_tests
