"""Idle teardown of a stage's endpoint: the scheduled rule and its handler asset."""
