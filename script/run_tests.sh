#!/bin/sh
# Install what the tests need on a fresh machine, then run the whole suite (CPU).
# Extra arguments go to pytest, e.g. `bash script/run_tests.sh -k losses`.
set -e
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

sh script/install.sh
$PYTHON -m pytest tests "$@"
