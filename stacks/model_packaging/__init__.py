"""Packaging a hub model at deploy time: the custom resource, its handler asset, the job's role and source archive."""
