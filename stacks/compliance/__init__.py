"""What every stage carries for cdk-nag and checkov, and the project's Lambdas."""
