"""CLIP ViT-B/32's image tower, from an ONNX file the deployment provides (no PyPI package ships the weights).

Any export works whose first input takes [N, 3, 224, 224] CLIP-normalised pixels and whose first output is
the projected [N, 512] image embedding (Hugging Face's `pixel_values` -> `image_embeds`, or OpenAI-style names).
"""

from __future__ import annotations

from pathlib import Path

from heaters.embeddings.backends import CLIP_VIT_B32, OnnxImageEmbedder, check_output, open_session, sha256_file
from heaters.embeddings.preprocess import clip_batch
from heaters.errors import ConfigError

DIM = 512


def load(path: Path) -> OnnxImageEmbedder:
    """Open and validate the export; its version is its sha256 prefix, so re-exports are told apart in the DB."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"CLIP_MODEL_PATH {path} {what}: point it at an ONNX export of CLIP ViT-B/32's image encoder")
    version = sha256_file(path)[:12]
    embedder = OnnxImageEmbedder(
        name=CLIP_VIT_B32, version=version, session=open_session(path), preprocess=clip_batch, dim=DIM
    )
    check_output(embedder, DIM, path)
    return embedder
