"""Drop-in alias: `from mooncake.engine import TransferEngine` runs on Ferry.
Build with -DFERRY_PYTHON_MOONCAKE_ALIAS=OFF to leave this package out."""
