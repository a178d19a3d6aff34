"""CDK stacks and constructs that put a TF Hub model behind a SageMaker endpoint."""
