"""The packaging job's source (shipped to SageMaker as `sagemaker_submit_directory`).

A package too, so the promotion tools can reuse its manifest digest.
"""
