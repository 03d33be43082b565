#!/usr/bin/env bash
# The Python suite against an installed wheel, as a user gets it:
#   python_wheel.sh BUILD_DIR [pytest args...]
# builds the wheel offline (`pip wheel --no-build-isolation`, reusing BUILD_DIR's CMake build),
# installs it into a fresh virtual environment made with --system-site-packages (numpy and
# pytest from Debian), proves `ferry.engine` and `mooncake.engine` are imported from that
# environment, and runs tests/python there with no PYTHONPATH into the build tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
shift
python=${FERRY_PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/ferry-wheel-XXXXXX)
trap 'rm -rf "$work"' EXIT

FERRY_BUILD_DIR=$build "$python" -m pip wheel -q --no-build-isolation --no-deps --no-index -w "$work/wheels" "$root"
wheel=$(ls "$work"/wheels/ferry_transfer_engine-*.whl)
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-index --no-deps "$wheel"
echo "wheel: $(basename "$wheel") installed into a fresh venv"

unset PYTHONPATH
cd "$work"  # not the source tree: python/ there must not shadow the installed package
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys
import ferry, ferry.engine, mooncake.engine
venv = sys.argv[1]
for module in (ferry.engine, mooncake.engine):
    assert module.__file__.startswith(venv), module.__file__
print("imported from the venv:", ferry.engine.__file__, "version", ferry.engine.__version__)
PY
FERRY_BUILD_DIR=$build "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python" "$@"
