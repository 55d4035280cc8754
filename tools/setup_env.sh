#!/usr/bin/env bash
# Set up a CPU-capable Python environment for wavevit-mm on a fresh Linux machine.
#
#   bash tools/setup_env.sh            # creates ./.venv (or $WAVEVIT_VENV) and installs everything
#
# What it installs (versions pinned, the stack known to work together):
#   torch 2.14.1 + torchvision 0.29.1, numpy 2.3.5, mmengine 0.10.7, mmcv 2.1.0 (built from the
#   PyPI sdist with its C++ ops for CPU), mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0,
#   openmim 0.3.9, the test tools, and this package in editable mode.
#
# The compiled mmcv wheel is cached in $WAVEVIT_WHEEL_CACHE (default ~/.cache/wavevit-mm/wheels), so a
# second set-up on the same machine skips the ~15 minute build. Re-running the script is safe: pinned
# packages that are already installed are left alone.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WAVEVIT_VENV:-$REPO_DIR/.venv}"
PYTHON="${PYTHON:-python3}"
CACHE="${WAVEVIT_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wavevit-mm/wheels}"

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# openmim drives pip through its internals: keep the venv's pip 23.x (never upgrade it here).
PIP=("$PY" -m pip install --disable-pip-version-check)

log "torch $TORCH_VERSION, torchvision $TORCHVISION_VERSION and build tools"
# setuptools < 81: mmcv's setup.py imports pkg_resources. < 80: the editable install below can still be the
# classic `setup.py develop` one (see there).
"${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
    "numpy==2.3.5" "setuptools<80" wheel ninja

# mmcv: PyPI only has the source distribution. Build it once (ops on CPU) and cache the wheel.
WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
mkdir -p "$WHEEL_DIR"
if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with CPU ops (about 15 minutes on 2 cores; cached afterwards)"
    BUILD_DIR="$(mktemp -d)"
    trap 'rm -rf "$BUILD_DIR"' EXIT
    "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
        --no-build-isolation -d "$BUILD_DIR" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD_DIR/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD_DIR"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD_DIR/mmcv-$MMCV_VERSION/setup.py"
    (cd "$BUILD_DIR/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$PY" -m pip wheel --disable-pip-version-check --no-deps --no-build-isolation -w "$WHEEL_DIR.tmp" .)
    mv "$WHEEL_DIR.tmp"/mmcv-*.whl "$WHEEL_DIR"/
    rmdir "$WHEEL_DIR.tmp" 2>/dev/null || true
fi

log "OpenMMLab libraries and test tools"
"${PIP[@]}" "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl -r "$REPO_DIR/requirements/runtime.txt" \
    -r "$REPO_DIR/requirements/tests.txt" "numpy==2.3.5" "torch==$TORCH_VERSION"
# openmim's own requirements (opendatalab & co) downgrade half of the environment: install it bare,
# with the few packages it really imports listed in requirements/mim.txt.
"${PIP[@]}" --no-deps "openmim==0.3.9"
"${PIP[@]}" -r "$REPO_DIR/requirements/mim.txt"

log "wavevit_mm (editable)"
# The classic develop install (an egg-link to this checkout) rather than a PEP 660 one: mim 0.3.9 finds a
# package's tools and configs under its distribution's location, which a PEP 660 editable install puts in
# site-packages, where there is no wavevit_mm/.mim. With the egg-link, `mim train/test/search wavevit_mm` work.
"${PIP[@]}" --no-deps --no-build-isolation --no-use-pep517 -e "$REPO_DIR"

"$PY" - <<'PYEOF'
import mmcv, mmdet, mmengine, mmpretrain, mmseg, torch, torchvision
from mmcv.ops import RoIAlign, nms  # noqa: F401  (compiled ops are there)
import wavevit_mm
print('torch', torch.__version__, '| torchvision', torchvision.__version__, '| mmengine', mmengine.__version__,
      '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__,
      '| mmpretrain', mmpretrain.__version__, '| wavevit_mm', wavevit_mm.__version__)
PYEOF
log "done: activate with 'source $VENV/bin/activate'"
