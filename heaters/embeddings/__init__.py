"""Image embeddings for clip keyframes: `get_embedder(settings.embedding_model, clip_model_path=...)`.

Two backends, both on ONNX Runtime (CPU): the shipped EfficientNet-Lite0 (default, 1280-d) and a
deployment-provided CLIP ViT-B/32 image encoder (512-d). Dims match heaters.models.artifact.EMBEDDING_MODELS.
"""

from heaters.embeddings.backends import MODEL_NAMES, ImageEmbedder, clear_cache, get_embedder

__all__ = ["MODEL_NAMES", "ImageEmbedder", "clear_cache", "get_embedder"]
