"""One CloudWatch dashboard per stage: the endpoint's traffic, errors, latency, its
capacity (instances' CPU, memory and disk, or serverless concurrency and memory) and its
alarms; and its URL in the console of the stage region's partition."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from stacks.serving.operations import VARIANT_NAME
from stacks.stage.names import ENDPOINT_METRICS_NAMESPACE, INVOCATION_METRICS_NAMESPACE

PERCENTILES = ("p50", "p90", "p99")
PERIOD = Duration.minutes(1)

# The console's host in each partition the project's regions fall in: "AWS Management
# Console endpoints and quotas" (AWS General Reference) for aws, "Getting Started with
# Amazon Web Services in China" for aws-cn, the AWS GovCloud (US) User Guide for
# aws-us-gov. Each takes the region as the `region` query parameter.
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def console_url(region: str, dashboard_name: str) -> str:
    """The dashboard's page in the console of `region`'s partition (the CDK's region table)."""
    partition = RegionInfo.get(region).partition
    host = CONSOLE_HOSTS.get(partition or "")
    if host is None:
        raise ValueError(f"No console host is known for region {region!r} (partition {partition}).")
    return f"https://{host}/cloudwatch/home?region={region}#dashboards:name={dashboard_name}"


class EndpointDashboard(Construct):
    """The dashboard `dashboard_name` of endpoint `endpoint_name`; `url` opens it in the console."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        dashboard_name: str,
        serverless: bool,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}

        def metric(name: str, statistic: str, namespace: str = INVOCATION_METRICS_NAMESPACE, label: str | None = None):
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=PERIOD,
                label=label or f"{name} {statistic}",
            )

        def latency(name: str) -> cloudwatch.GraphWidget:
            # Microseconds, as SageMaker reports them.
            return cloudwatch.GraphWidget(
                title=f"{name} (µs)",
                width=8,
                left=[metric(name, p, label=f"{name} {p}") for p in PERCENTILES],
            )

        if serverless:
            # What a serverless endpoint publishes, exhaustively (SageMaker developer guide,
            # "Alarms and logs for tracking metrics from serverless endpoints"): the real-time
            # endpoints' Invocations, 4XX/5XX errors, ModelLatency, OverheadLatency,
            # ModelSetupTime and MemoryUtilization, and ServerlessConcurrentExecutionsUtilization;
            # no CPU or disk. "Amazon SageMaker AI metrics in Amazon CloudWatch" lists
            # MemoryUtilization only among the endpoint metrics of /aws/sagemaker/Endpoints,
            # ModelSetupTime among the invocation metrics of AWS/SageMaker. Neither page names
            # the concurrency metric's namespace: it is read from AWS/SageMaker, where every
            # endpoint metric that is not an instance's is.
            capacity = cloudwatch.GraphWidget(
                title="Serverless concurrency, memory (%) and cold starts",
                width=8,
                left=[
                    metric("ServerlessConcurrentExecutionsUtilization", "Maximum"),
                    metric("MemoryUtilization", "Average", ENDPOINT_METRICS_NAMESPACE),
                ],
                right=[metric("ModelSetupTime", "Average")],
            )
        else:
            # The standard endpoint metrics carry no instance count; with traffic, all
            # invocations over those per instance give it (metric math): the same guide
            # defines InvocationsPerInstance as Invocations "normalized by InstanceCount
            # in each ProductionVariant".
            instances = cloudwatch.MathExpression(
                expression="invocations / per_instance",
                using_metrics={
                    "invocations": metric("Invocations", "Sum"),
                    "per_instance": metric("InvocationsPerInstance", "Sum"),
                },
                label="Instances serving (Invocations / InvocationsPerInstance)",
                period=PERIOD,
            )
            capacity = cloudwatch.GraphWidget(
                title="Instances: count; CPU, memory, disk (%)",
                width=8,
                left=[
                    metric(name, "Average", ENDPOINT_METRICS_NAMESPACE)
                    for name in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")
                ],
                right=[instances],
            )
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Invocations and errors",
                width=8,
                left=[metric("Invocations", "Sum")],
                right=[metric("Invocation4XXErrors", "Sum"), metric("Invocation5XXErrors", "Sum")],
            ),
            latency("ModelLatency"),
            latency("OverheadLatency"),
            capacity,
        ]
        if alarms:
            widgets.append(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=8))
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name, widgets=[widgets])
        # Every stage's stack has a concrete region (`stacks/compose.py`), dev's too.
        self.url = console_url(Stack.of(self).region, dashboard_name)
