"""Shipped example configs and small data sets (the default demo: Palmer penguins)."""

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
DEMO_CONFIG = EXAMPLES_DIR / "penguins.yaml"
