"""The default embedder: ImageNet EfficientNet-Lite0's pooled features, from the ONNX file shipped in weights/.

The file comes from scripts/convert_efficientnet_lite0.py (torch stays out of the runtime); its checksum
is pinned here so a truncated checkout or a Git LFS pointer fails loudly instead of embedding garbage.
"""

from __future__ import annotations

from pathlib import Path

from heaters.embeddings.backends import EFFICIENTNET_LITE0, OnnxImageEmbedder, check_output, open_session, sha256_file
from heaters.embeddings.preprocess import efficientnet_batch
from heaters.errors import ConfigError

WEIGHTS_PATH = Path(__file__).parent / "weights" / "efficientnet-lite0.onnx"
WEIGHTS_SHA256 = "7063b639b252fb7cf6d2540d9c889249fbb7ad02c4b07a5e7ad1cb40ae70a563"
DIM = 1280


def load(path: Path = WEIGHTS_PATH, *, sha256: str = WEIGHTS_SHA256) -> OnnxImageEmbedder:
    """Verify the checksum, open the session, and check it yields DIM-d vectors."""
    actual = sha256_file(path) if path.is_file() else None
    if actual is None:
        raise ConfigError(
            f"EfficientNet-Lite0 weights missing at {path}: run scripts/make_model.sh (make run and make test do)"
        )
    if actual != sha256:
        raise ConfigError(
            f"EfficientNet-Lite0 weights at {path} have sha256 {actual}, expected {sha256}: the file is corrupt or "
            "a Git LFS pointer; restore it, or rerun scripts/convert_efficientnet_lite0.py and update WEIGHTS_SHA256"
        )
    embedder = OnnxImageEmbedder(
        name=EFFICIENTNET_LITE0,
        version=actual[:12],
        session=open_session(path),
        preprocess=efficientnet_batch,
        dim=DIM,
    )
    check_output(embedder, DIM, path)
    return embedder
