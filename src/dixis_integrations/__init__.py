"""dixis-integrations: typed integration adapters for e-commerce marketplaces."""

from dixis_integrations._version import __version__

__all__ = ["__version__"]
