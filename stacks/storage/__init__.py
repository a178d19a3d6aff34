"""The storage stack: the artifact bucket, who may write which prefix, the promotion role."""
