"""Re-exports ferry.engine under the name code written for Mooncake imports."""
from ferry.engine import *  # noqa: F401,F403
from ferry.engine import (  # noqa: F401
    SUPPORT_CUDA, SUPPORT_EFA, SUPPORT_HIP, SUPPORT_INTRA_NVLINK, SUPPORT_MNNVL,
    InnerTransferEngine, TransferEngine, TransferNotify, TransferOpcode)
