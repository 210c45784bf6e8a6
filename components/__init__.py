"""The kfp stages of the lifecycle, one folder each, in pipeline order.

track (the parent MLflow run, the summary), ingest, validate (cleaning; the data contract comes
from kubecycle.contract), explore, split, features (the feature plan: which columns the model
reads), tune, train, evaluate, explain, register (logging, the promotion gate in gate.py),
package (the bento, built by kubecycle.serving), monitor (one monitoring pass, run by the
monitoring pipeline and `kubecycle monitor`).

Each folder has the same shape: core.py, the stage's logic (typed arguments in, a result out,
never kfp), and component.py, the kfp component that unwraps artifacts, calls core and writes
outputs. A stage never imports another stage; what two stages share lives in kubecycle's core
(tests/unit/test_dependencies.py checks it).
"""
