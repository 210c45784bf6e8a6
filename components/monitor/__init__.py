"""Monitoring: a streaming drift engine with Evidently's default tests, Evidently's HTML
report on a bounded sample, and the policy that decides when to retrain."""
