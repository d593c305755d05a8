"""Writes the raw rows the transforms read."""

import os
from pathlib import Path

Path("/volumes/etl-data/raw").write_text("a\nb\nab\n")
print(f"extracted 3 rows for {os.environ['STAGE']}")
