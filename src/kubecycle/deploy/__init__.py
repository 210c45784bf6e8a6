"""Kubernetes deploy of the serving Deployment (`kubecycle deploy`): not a kfp stage.

actions.py is the command: which registered version and bento to serve, and which action;
pin.py decides what deploy owns (the model pin) and renders the serving manifests of
kubecycle.manifests; rollout.py is the actions (apply, rollback, canary, promote, abort);
cluster.py the thin client of the Kubernetes API (server-side apply, read, scale, delete).
"""
