"""One folder per lifecycle stage: core.py (pure logic) and component.py (the kfp wrapper)."""
