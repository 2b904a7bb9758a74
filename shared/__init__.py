"""Code both services import: the record model, file naming, stream names, settings and logging.

This package imports neither ``proxy`` nor ``shipper``.
"""

__version__ = "0.1.0"
