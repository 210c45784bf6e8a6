"""The kfp DAGs (training), running them locally or compiling them, and the CLI."""
