"""Similar-clip search over the embeddings table (heaters.search.vectors)."""
