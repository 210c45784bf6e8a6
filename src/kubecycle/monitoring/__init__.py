"""The monitoring runtime, used by the monitor stage and `kubecycle monitor`: not a kfp stage.

window.py reads a window (a file, a folder or an object-store prefix of the inference log) in
chunks; drift.py is the streamed drift engine against the reference statistics
(kubecycle.reference); quality.py data and model quality; policy.py the retraining decision;
report.py the Evidently HTML report; prometheus.py the pushed metrics.
"""
