"""The kustomize manifests, shipped in the package for `kubecycle deploy` (base/, overlays/)."""
