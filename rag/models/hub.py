"""One rule for "is the Hugging Face Hub off limits?", for every model role.

huggingface_hub's own reading of HF_HUB_OFFLINE (1, ON, YES or TRUE, any case), so rag and the
libraries it calls never disagree about whether a download may be tried.
"""

from __future__ import annotations

import os

TRUE = {"1", "ON", "YES", "TRUE"}


def offline() -> bool:
    """Whether HF_HUB_OFFLINE forbids the Hub in this process."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in TRUE
