#!/bin/sh
# Install the project's requirements and the project itself (editable) into the
# current Python (use a virtual environment: README "Install"). Safe to re-run: pip skips
# what is already installed.
#
# An installed torch is never replaced: one inside the supported range (any build: CPU,
# CUDA, ROCm) is kept as it is and only the other requirements are installed; one outside
# it stops this script with a message. With no torch, requirements.txt's range is
# installed (on a machine without a CUDA index that is PyPI's default build).
set -e
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_MIN=2.4
TORCH_MAX=2.14.1     # keep in step with requirements.txt

# "absent", "ok VERSION" or "outside VERSION" (read from the package metadata: no import)
TORCH_STATE=$($PYTHON - "$TORCH_MIN" "$TORCH_MAX" <<'EOF'
import re
import sys
from importlib import metadata


def release(text):
    return tuple(int(part) for part in re.match(r"\d+(\.\d+)*", text).group(0).split("."))


try:
    found = metadata.version("torch")
except metadata.PackageNotFoundError:
    print("absent")
    sys.exit(0)
low, high = release(sys.argv[1]), release(sys.argv[2])
print(("ok " if low <= release(found) <= high else "outside ") + found)
EOF
)

case $TORCH_STATE in
    absent)
        $PYTHON -m pip install --quiet --disable-pip-version-check -r requirements.txt ;;
    ok\ *)
        # everything but torch: the installed build stays
        REST=$(mktemp)
        trap 'rm -f "$REST"' EXIT
        grep -v -E '^torch([<>=!~ ;]|$)' requirements.txt >"$REST"
        $PYTHON -m pip install --quiet --disable-pip-version-check -r "$REST" ;;
    outside\ *)
        echo "install.sh: the installed torch ${TORCH_STATE#outside } is outside the supported range" \
             "$TORCH_MIN to $TORCH_MAX, and this script does not replace it. Use a virtual environment" \
             "with a supported torch (CPU: pip install torch==$TORCH_MAX; CUDA: the command for your" \
             "CUDA version from PyTorch's install page, torch between $TORCH_MIN and $TORCH_MAX)," \
             "then run this again (README \"Install\")." >&2
        exit 1 ;;
    *)
        echo "install.sh: could not read the installed torch version with $PYTHON: $TORCH_STATE" >&2
        exit 1 ;;
esac
$PYTHON -m pip install --quiet --disable-pip-version-check --no-deps -e .
