"""Running the pipelines on this machine.

It holds the fork server that keeps kfp.local's task processes cheap (forkserver.py, with its
standard-library client), and the task containers of `kubecycle run --in-containers`
(containers.py: kfp's DockerRunner, restricted like a pod).
"""
