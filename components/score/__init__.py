"""Batch scoring stage: files scored in chunks by a registered version, rejects kept apart."""
