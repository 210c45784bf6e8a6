"""The pipelines and how they run.

training.py and monitoring.py are the kfp DAGs (light: kfp and the component wrappers only);
run.py runs the training pipeline on this machine with kfp.local (local/: the fork server that
keeps its task processes cheap, and the task containers of `--in-containers`) or compiles it;
submit.py sends it to a KFP API; retrain.py holds the retrainers monitoring calls; cli.py is the
`kubecycle` command line.
"""
