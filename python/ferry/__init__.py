"""Ferry: a transfer engine for KV-cache and weights. See ferry.engine.TransferEngine."""
from . import engine  # noqa: F401
from .engine import TransferEngine, TransferNotify, TransferOpcode, __version__  # noqa: F401

__all__ = ["engine", "TransferEngine", "TransferNotify", "TransferOpcode", "__version__"]
