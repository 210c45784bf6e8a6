"""Kubernetes deploy of the serving Deployment (`kubecycle deploy`): not a kfp stage.

pin.py decides what deploy owns (the model pin) and renders the serving manifests of
kubecycle.manifests; rollout.py is the actions (apply, rollback, canary, promote, abort);
cluster.py the thin client of the Kubernetes API (server-side apply, read, scale, delete).
"""
