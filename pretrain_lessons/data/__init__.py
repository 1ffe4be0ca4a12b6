"""Data: offline-first provisioning of every asset the course uses, and loaders for the lessons."""
from .provision import ProvisionError, ensure, fetch, load_manifest, status_rows

__all__ = ["ProvisionError", "ensure", "fetch", "load_manifest", "status_rows"]
