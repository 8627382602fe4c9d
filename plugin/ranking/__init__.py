"""Second-stage ranking: features of each candidate a store returned, and the scorers that
turn them into the final order (EBR §5, "a custom reranker adding cosine features")."""

from ebr.ranking.protocol import RankedHit, Reranker, RerankRequest

__all__ = ["RankedHit", "RerankRequest", "Reranker"]
