"""Idle teardown for an instance-backed dev endpoint (scheduled Lambda).

When the endpoint has had no invocations for the configured hours, it deletes
the stage's serving stack through CloudFormation, which stays the owner of
every resource: nothing drifts, and the next `make deploy` brings the endpoint
back. Plain functions over boto3 clients; the handler only reads its settings.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


def invocations(cloudwatch, endpoint: str, variant: str, start: dt.datetime, end: dt.datetime) -> float:
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
        StartTime=start,
        EndTime=end,
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in points)


def decide(
    cloudwatch,
    sagemaker,
    cloudformation,
    endpoint: str,
    stack: str,
    idle_hours: int,
    now: dt.datetime,
    *,
    variant: str,
) -> str:
    """What was done, as a word: 'deleted', or why not."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError:
        return "no-endpoint"
    start = now - dt.timedelta(hours=idle_hours)
    # An endpoint created or updated inside the window has not been idle that long.
    if described["LastModifiedTime"] > start:
        return "recently-changed"
    if invocations(cloudwatch, endpoint, variant, start, now) > 0:
        return "in-use"
    try:
        (status,) = [s["StackStatus"] for s in cloudformation.describe_stacks(StackName=stack)["Stacks"]]
    except ClientError:
        return "no-stack"
    if status not in _SETTLED:
        return "stack-busy"
    logger.info("%s idle for %s h: deleting stack %s", endpoint, idle_hours, stack)
    cloudformation.delete_stack(StackName=stack)
    return "deleted"


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    result = decide(
        boto3.client("cloudwatch"),
        boto3.client("sagemaker"),
        boto3.client("cloudformation"),
        os.environ["ENDPOINT_NAME"],
        os.environ["SERVING_STACK"],
        int(os.environ["IDLE_HOURS"]),
        dt.datetime.now(dt.UTC),
        variant=os.environ["VARIANT_NAME"],
    )
    logger.info("idle teardown: %s", result)
    return {"result": result}
