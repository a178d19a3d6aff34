"""Running an instance-backed endpoint in production: its alarms (and whom they
tell), its autoscaling, and how an update shifts traffic and rolls back."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.rulebook import traffic
from stacks.sagemaker_access import alarm_arn
from stacks.stage.names import INVOCATION_METRICS_NAMESPACE
from stacks.stage.schema import Alarms, Autoscaling, Deployment

# The one variant of every endpoint: its name is in alarms, autoscaling and the
# idle-teardown handler (which gets it through its environment).
VARIANT_NAME = "AllTraffic"
# CloudWatch reports ModelLatency in microseconds.
_MICROSECONDS_PER_MS = 1000


def endpoint_key(scope: Construct, construct_id: str, description: str) -> kms.Key:
    """A customer-managed key of the endpoint's own, rotated, gone with the stack."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        pending_window=Duration.days(7),
        removal_policy=RemovalPolicy.DESTROY,
    )


class EndpointAlarms(Construct):
    """5XX and model-latency alarms on the endpoint, notifying an SNS topic."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_name: str, names: tuple[str, str], settings: Alarms
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch alarms cannot publish to a topic under the AWS-managed
        # alias/aws/sns key, whose policy nobody can extend (rule alarm-topic-key).
        self.key = endpoint_key(self, "TopicKey", f"Encrypts the alarm topic of endpoint {endpoint_name}")
        # Unconditioned, as the SNS guide's statement for AWS event sources is: no AWS
        # document says CloudWatch's KMS calls carry aws:SourceAccount, and a condition on
        # a key absent from the request would drop every notification silently. The key
        # serves this one topic, whose own policy names the alarms (below).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"{endpoint_name} alarms",
            enforce_ssl=True,
            master_key=self.key,
        )
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default
        # (the one same-account alarms publish through): CloudWatch must be let in by
        # name, for these alarms only (rule alarm-topic-key).
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TheseAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": [alarm_arn(stack, name) for name in names]},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        for email in settings.emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}
        errors_name, latency_name = names
        self.errors = cloudwatch.Alarm(
            self,
            "Errors5xx",
            alarm_name=errors_name,
            alarm_description=f"{endpoint_name}: the model answers with server errors",
            metric=cloudwatch.Metric(
                namespace=INVOCATION_METRICS_NAMESPACE,
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            threshold=settings.max_5xx_errors,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency = cloudwatch.Alarm(
            self,
            "ModelLatency",
            alarm_name=latency_name,
            alarm_description=f"{endpoint_name}: the model is slower than "
            f"{settings.max_model_latency_ms} ms on average",
            metric=cloudwatch.Metric(
                namespace=INVOCATION_METRICS_NAMESPACE,
                metric_name="ModelLatency",
                dimensions_map=dimensions,
                statistic="Average",
                period=Duration.minutes(1),
            ),
            threshold=settings.max_model_latency_ms * _MICROSECONDS_PER_MS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.errors, self.latency):
            alarm.add_alarm_action(actions.SnsAction(self.topic))


def deployment_config(
    deployment: Deployment, alarm_names: list[str], largest_fleet: int
) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """Blue/green traffic shifting; a breaching alarm rolls the update back.

    `largest_fleet`: the most instances autoscaling may hold, which sets how many
    linear steps (and so waits) the execution timeout must cover (rule blue-green-timeout).
    """
    wait = deployment.wait_minutes * 60
    step = (
        # Counted in instances, so a step is whole at any fleet size autoscaling holds.
        sagemaker.CfnEndpoint.CapacitySizeProperty(type="INSTANCE_COUNT", value=deployment.step_instances)
        if deployment.step_instances
        else None
    )
    routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=deployment.strategy.upper(),
        wait_interval_in_seconds=wait,
        canary_size=step if deployment.strategy == "canary" else None,
        linear_step_size=step if deployment.strategy == "linear" else None,
    )
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=wait,
            maximum_execution_timeout_in_seconds=traffic.blue_green_timeout(
                deployment.strategy, deployment.step_instances, largest_fleet, wait
            ),
        ),
        auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in alarm_names]
        )
        if alarm_names
        else None,
    )


class EndpointAutoscaling(Construct):
    """Target tracking on invocations per instance for the endpoint's variant."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        settings: Autoscaling,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = autoscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}",
            min_capacity=settings.min_instances,
            max_capacity=settings.max_instances,
        )
        # Registered after the endpoint exists, and so deregistered before it
        # is deleted: `cdk destroy` never leaves a target pointing at nothing.
        self.target.node.add_dependency(endpoint)
        autoscaling.CfnScalingPolicy(
            self,
            "InvocationsPerInstance",
            policy_name=f"{endpoint_name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=settings.invocations_per_instance,
                predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=300,
                scale_out_cooldown=60,
            ),
        )
