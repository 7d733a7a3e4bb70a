"""The embedder protocol, the shared ONNX Runtime plumbing, and `get_embedder`, the one entry point."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from heaters.errors import ConfigError

if TYPE_CHECKING:
    import onnxruntime

EFFICIENTNET_LITE0 = "efficientnet-lite0"
CLIP_VIT_B32 = "clip-vit-b32"
MODEL_NAMES: tuple[str, ...] = (EFFICIENTNET_LITE0, CLIP_VIT_B32)

# Small on purpose: a worker embeds while FFmpeg and other actors share the machine.
INTRA_OP_THREADS = 2
# Images per session.run: bounds the input tensor (~600 KB per image) whatever the caller passes.
MAX_BATCH = 32


@runtime_checkable
class ImageEmbedder(Protocol):
    """Turns images into unit vectors; `name`/`version`/`dim` go into the embeddings row next to the vector."""

    name: str
    version: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Shape (len(images), dim), float32, each row L2-normalised (so cosine similarity is a dot product)."""
        ...


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (a CLIP tower is ~350 MB); unreadable files become ConfigError."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ConfigError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def open_session(path: Path) -> onnxruntime.InferenceSession:
    """A CPU session with few intra-op threads and no inter-op pool: inference runs in the caller's thread."""
    import onnxruntime as ort  # here, not at import: importing heaters.embeddings for MODEL_NAMES stays cheap

    options = ort.SessionOptions()
    options.intra_op_num_threads = INTRA_OP_THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle workers should not spin their threads between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, unexported exception types for bad files
        raise ConfigError(f"{path} is not a usable ONNX model: {exc}") from exc


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32; an all-zero row stays zero rather than becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


class OnnxImageEmbedder:
    """One ONNX session with one image input and one (n, dim) output, plus the preprocessing it expects."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        session: onnxruntime.InferenceSession,
        preprocess: Callable[[Sequence[Image.Image]], np.ndarray],
        dim: int,
    ) -> None:
        self.name, self.version, self.dim = name, version, dim
        self._session = session
        self._preprocess = preprocess
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name

    def raw(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The model's first output for these images, unnormalised, whatever its shape (used to validate at load)."""
        (out,) = self._session.run([self._output], {self._input: self._preprocess(images)})
        return np.asarray(out)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self.raw(images[i : i + MAX_BATCH]) for i in range(0, len(images), MAX_BATCH)]
        out = np.concatenate(parts, axis=0)
        if out.shape != (len(images), self.dim):
            raise ConfigError(f"{self.name} returned shape {out.shape}, expected {(len(images), self.dim)}")
        return l2_normalise(out)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version} dim={self.dim}>"


def check_output(embedder: OnnxImageEmbedder, expected_dim: int, path: Path) -> None:
    """Run one dummy image so a wrong model fails at load time, with the path in the message, not mid-batch."""
    try:
        out = embedder.raw([Image.new("RGB", (224, 224), (128, 128, 128))])
    except Exception as exc:  # onnxruntime's own error types: wrong input shape, dtype, rank
        raise ConfigError(f"{path} cannot embed a 224x224 RGB image: {exc}") from exc
    if out.ndim == 3:
        raise ConfigError(
            f"{path} outputs per-token features {tuple(out.shape)}, not one vector per image: export the image "
            f"encoder with its projection (an `image_embeds`-style output of shape [N, {expected_dim}])"
        )
    if out.ndim != 2 or out.shape != (1, expected_dim):
        raise ConfigError(
            f"{path} outputs shape {tuple(out.shape)} for one image; {embedder.name} needs [1, {expected_dim}]"
        )


_cache: dict[tuple[str, Path | None], ImageEmbedder] = {}
_cache_lock = threading.Lock()


def get_embedder(name: str, *, clip_model_path: Path | None = None) -> ImageEmbedder:
    """The embedder for a model name, built once per (name, path): a session costs ~0.1-1 s and its memory."""
    from heaters.embeddings import clip, efficientnet

    if name == EFFICIENTNET_LITE0:
        key: tuple[str, Path | None] = (name, None)
    elif name == CLIP_VIT_B32:
        if clip_model_path is None:
            raise ConfigError(
                f"EMBEDDING_MODEL={CLIP_VIT_B32} needs CLIP_MODEL_PATH: the path of an ONNX export of CLIP ViT-B/32's "
                "image encoder (pixel_values [N,3,224,224] -> image_embeds [N,512])"
            )
        key = (name, Path(clip_model_path).expanduser().resolve())
    else:
        raise ConfigError(f"unknown embedding model {name!r}; known models: {', '.join(MODEL_NAMES)}")

    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = efficientnet.load() if key[1] is None else clip.load(key[1])
            _cache[key] = cached
        return cached


def clear_cache() -> None:
    """Forget every built embedder (tests; or after replacing a model file in place)."""
    with _cache_lock:
        _cache.clear()
