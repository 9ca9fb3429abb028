#!/bin/sh
# Install the project's requirements and the project itself (editable) into the
# current Python. Safe to re-run: pip skips what is already installed.
set -e
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

$PYTHON -m pip install --quiet --disable-pip-version-check -r requirements.txt
$PYTHON -m pip install --quiet --disable-pip-version-check --no-deps -e .
