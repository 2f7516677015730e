"""DataLoaders: one SQL statement per batch, created per request."""

from loaders.registry import Loaders, Wrap

__all__ = ["Loaders", "Wrap"]
