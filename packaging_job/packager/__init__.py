"""Turns a TF Hub handle into a verified TF Serving artifact.

Plain functions over paths and streams; `train.py` is the thin SageMaker edge.
Relative imports only: the package runs both as `packager` (inside the training
container, from the submit directory) and from the tests.
"""
