"""The examples' tests import `acme_hooks` as the gateway would: from the
directory on PYTHONPATH (here, examples/hooks)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("BACKEND_SIGNING_KEY", "k" * 32)  # signing refuses to import without one
