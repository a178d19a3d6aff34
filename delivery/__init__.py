"""Moving one verified artifact from stage to stage, and checking a stage serves."""
