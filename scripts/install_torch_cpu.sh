#!/usr/bin/env bash
# Installs PyTorch's CPU build into .venv, for the torch-backend tests and for running
# tlgui with KERAS_BACKEND=torch on a machine without an NVIDIA GPU.
#
#   bash scripts/install_torch_cpu.sh
#
# On Linux, PyPI's torch is the CUDA build: 555 MB plus 2.3 GB of nvidia-* wheels
# (measured with `pip download torch==2.14.1`). The CPU build is 190 MB. It comes from a
# local wheel when pip's find-links offer one (pip --no-index), else from PyTorch's CPU
# index. Takes about 15 s from a local wheel (2 cores), longer from the network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=.venv/bin/python
if "$py" -c "import torch" 2>/dev/null; then
    echo "torch $("$py" -c 'import torch; print(torch.__version__)') is already installed"
    exit 0
fi
start=$(date +%s)
# Its pure-Python dependencies first, from the usual index.
"$py" -m pip install -q "sympy>=1.13" networkx jinja2 filelock fsspec typing-extensions
if "$py" -m pip install -q --no-index --no-deps --only-binary=:all: torch 2>/dev/null \
        && "$py" -c "import torch, sys; sys.exit(0 if '+cpu' in torch.__version__ else 1)"; then
    echo "installed the local CPU wheel"
else
    "$py" -m pip uninstall -q -y torch 2>/dev/null || true
    "$py" -m pip install -q --only-binary=:all: --timeout 20 --retries 1 torch \
        --index-url https://download.pytorch.org/whl/cpu
fi
echo "torch $("$py" -c 'import torch; print(torch.__version__)') installed in $(( $(date +%s) - start )) s"
