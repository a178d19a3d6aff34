"""After `make destroy STAGE=...`: is anything of the stage still billing?

Lists the SageMaker endpoints, endpoint configs, models and training jobs
still running or stopping (both bill) tagged with the project and stage,
prints them, and fails if any is left. A resource that goes away while it is
being looked at is gone, not an error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from botocore.exceptions import ClientError

from delivery.deployed import deployed_stage
from tools.cli import run

# (list call, result key, ARN field, name field, extra list arguments)
_KINDS: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("list_endpoints", "Endpoints", "EndpointArn", "EndpointName", {}),
    ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigArn", "EndpointConfigName", {}),
    ("list_models", "Models", "ModelArn", "ModelName", {}),
    ("list_training_jobs", "TrainingJobSummaries", "TrainingJobArn", "TrainingJobName", {"StatusEquals": "InProgress"}),
    ("list_training_jobs", "TrainingJobSummaries", "TrainingJobArn", "TrainingJobName", {"StatusEquals": "Stopping"}),
)


def leftovers(sagemaker, project: str, stage: str) -> list[str]:
    """`kind name` of every SageMaker resource still tagged project=<project>, stage=<stage>."""
    found = []
    for call, key, arn_field, name_field, arguments in _KINDS:
        for page in sagemaker.get_paginator(call).paginate(**arguments):
            for item in page[key]:
                tags = _tags(sagemaker, item[arn_field])
                if tags.get("project") == project and tags.get("stage") == stage:
                    found.append(f"{name_field.removesuffix('Name')} {item[name_field]}")
    return found


def _tags(sagemaker, arn: str) -> dict[str, str]:
    try:
        return {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    except ClientError as error:
        # Deleted between the listing and this call.
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return {}
        raise


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    stage = deployed_stage(args.stage)
    config = stage.config
    found = leftovers(stage.client("sagemaker"), config.project, args.stage)
    for item in found:
        print(f"still there: {item}")
    if found:
        print(f"{len(found)} SageMaker resource(s) of stage {args.stage} remain and may bill.")
        return 1
    print(f"Nothing of stage {args.stage} is left in SageMaker ({config.region}).")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
