"""Small network parts: spatiotemporal tokenizer and the variational decoding head."""

from ._head import VariationalHead
from ._tokenizer import SpatiotemporalTokenizer

__all__ = ["SpatiotemporalTokenizer", "VariationalHead"]
