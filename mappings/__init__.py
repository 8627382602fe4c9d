"""ebr.mappings: the index schema, text analyzers, metric conversions, OpenSearch mappings."""

from ebr.mappings.schema import (
    CoarseQuantizerSpec,
    EmbeddingKey,
    Hnsw,
    IvfPq,
    Namespace,
    Schema,
)
from ebr.mappings.space import Space

__all__ = ["CoarseQuantizerSpec", "EmbeddingKey", "Hnsw", "IvfPq", "Namespace", "Schema", "Space"]
