"""Deploy: render and apply the serving manifests pinned to a model version."""
