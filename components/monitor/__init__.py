"""Monitoring stage: drift checks of a window of served data and the retraining decision.

It has a streaming drift engine with Evidently's default tests, Evidently's HTML report on a
bounded sample, and the policy that decides when to retrain.
"""
