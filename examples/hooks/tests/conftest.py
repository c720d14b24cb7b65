"""What the hooks need from the environment when they are imported: a signing
key (acme_hooks.signing refuses to import without one)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("BACKEND_SIGNING_KEY", "k" * 32)
# Installed (`pip install -e '.[test]'`), acme_hooks imports as it is; the
# gateway repository's own test run uses the directory as it stands.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
