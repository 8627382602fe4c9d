"""The request API for app backends (:class:`Searcher`, :func:`search`): a request's text and
context through a query template to its page of ranked, explained hits."""

from ebr.request.embedders import ModelEmbedder, ProjectionEmbedder, TextEmbedder
from ebr.request.embedding_cache import EmbeddingCache
from ebr.request.nn_settings import NNSettings, PageSettings
from ebr.request.searcher import DEFAULT_CANDIDATES, Retrieval, Searcher, SearchResponse, search
from ebr.request.templates import Filling, Template

__all__ = ["DEFAULT_CANDIDATES", "EmbeddingCache", "Filling", "ModelEmbedder", "NNSettings",
           "PageSettings", "ProjectionEmbedder", "Retrieval", "SearchResponse", "Searcher", "Template",
           "TextEmbedder", "search"]
