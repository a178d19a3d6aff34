"""One CloudWatch dashboard per stage: the endpoint's traffic, errors, latency, its
capacity (instances' CPU, memory and disk, or serverless concurrency and memory) and its alarms."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks.serving.operations import VARIANT_NAME
from stacks.stage.names import ENDPOINT_METRICS_NAMESPACE, INVOCATION_METRICS_NAMESPACE

PERCENTILES = ("p50", "p90", "p99")
PERIOD = Duration.minutes(1)


class EndpointDashboard(Construct):
    """The dashboard `endpoint_name`; `url` opens it in the console."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
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
            # The SageMaker guide's "Alarms and logs for tracking metrics from serverless
            # endpoints" lists MemoryUtilization among a serverless endpoint's metrics;
            # the guide above puts it in /aws/sagemaker/Endpoints.
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
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=endpoint_name, widgets=[widgets])
        # The stack's region: a literal for pinned stages, a token for dev.
        region = Stack.of(self).region
        self.url = (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={endpoint_name}"
        )
