"""The stage's settings: the validated config, its region rule and its container images."""
