#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image from its Ubuntu
# base image; the zip is unpacked in /autograder/source. It installs Python 3.11, bubblewrap
# (the grader's sandbox) and the kit with its pinned dependencies into /autograder/venv.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$SOURCE")"

apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap util-linux ca-certificates software-properties-common
# Ubuntu 22.04 has Python 3.11 in its own archive; later releases get it from the deadsnakes PPA.
if ! apt-cache show python3.11-venv >/dev/null 2>&1; then
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv

python3.11 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
# pyproject.toml pins every dependency exactly, so verdicts match the staff's own runs.
"$ROOT/venv/bin/python" -m pip install --quiet "$SOURCE/kit"
chmod +x "$SOURCE/run_autograder"
