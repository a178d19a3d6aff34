"""A stage's synthesized templates checked against the rulebook.

The serving template's SageMaker resources are read as the API requests
CloudFormation will send (`requests.py` checks those), the packaging custom
resource as the CreateTrainingJob request its handler builds, and the rules
that span resources (the rollback alarms the Model's role may describe, the
key of the topic the alarms publish to) are followed across the template.
Values only known at deploy time stay unknown and are not guessed, except the
packaging job's artifact, whose form its `CompressionType` decides.
"""

from __future__ import annotations

from typing import Any

from stacks.model_packaging.handler_asset.packaging_handler.job_request import RESOURCE_TYPE as PACKAGING_TYPE
from stacks.model_packaging.handler_asset.packaging_handler.job_request import (
    Attribute,
    job_name,
    parse_properties,
    training_job_request,
)
from stacks.model_packaging.job_contract import job_contract
from stacks.rulebook import Violation, violation
from stacks.rulebook import requests as api
from stacks.rulebook.policies import ALARM_ARN, CLOUDWATCH, proves

_UNKNOWN = "{?}"


class _Stage:
    def __init__(self, serving: dict, account: str | None, region: str | None) -> None:
        self.serving = serving["Resources"]
        # How the stack's own account and region read in its ARNs: a literal when the
        # stage pins them, else the pseudo parameter.
        self.accounts = {"{AWS::AccountId}"} | ({account} if account else set())
        self.regions = {"{AWS::Region}"} | ({region} if region else set())

    # --- values as CloudFormation will resolve them, as far as synth knows ---

    def text(self, value: Any) -> Any:
        """Literal strings stay; intrinsics become readable placeholders; None when
        nothing can be said (a trailing token hides how the value ends)."""
        if isinstance(value, list):
            return [self.text(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            texts = [self.text(part) for part in parts]
            if not texts or not isinstance(texts[-1], str) or texts[-1].startswith("{"):
                return None
            return separator.join(t if isinstance(t, str) else _UNKNOWN for t in texts)
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            resource = self.serving.get(logical_id, {})
            if resource.get("Type") == PACKAGING_TYPE and attribute == Attribute.ARTIFACT_KEY:
                # The handler reports <job>/output/model.tar.gz (GZIP) or <job>/output/model/ (NONE).
                gzip = resource["Properties"].get("CompressionType", "NONE") == "GZIP"
                return f"{_UNKNOWN}/output/model.tar.gz" if gzip else f"{_UNKNOWN}/output/model/"
            return f"{{{logical_id}.{attribute}}}"
        if "Ref" in value:
            return f"{{{value['Ref']}}}"
        if "Fn::ImportValue" in value:
            return f"{{import:{value['Fn::ImportValue']}}}"
        if "Fn::Sub" in value:
            return value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else None
        return {k: self.text(v) for k, v in value.items()}

    def of_type(self, resources: dict, kind: str) -> dict[str, dict]:
        return {k: r for k, r in resources.items() if r["Type"] == kind}

    # --- what SageMaker would know, as `requests.Lookups` ---

    def model(self, name: str) -> dict | None:
        for logical_id, resource in self.of_type(self.serving, "AWS::SageMaker::Model").items():
            if name == f"{{{logical_id}.ModelName}}":
                return self.text(resource["Properties"])
        return None

    def endpoint_config(self, name: str) -> dict | None:
        for logical_id, resource in self.of_type(self.serving, "AWS::SageMaker::EndpointConfig").items():
            if name == f"{{{logical_id}.EndpointConfigName}}":
                return self.text(resource["Properties"])
        return None

    def endpoint(self, name: str) -> dict | None:
        return None  # nothing is deployed before: only create-time rules apply

    def prefix_keys(self, uri: str) -> list[str] | None:
        return None

    def scaling(self, endpoint_name: str) -> dict[str, tuple[int, int]]:
        ranges = {}
        for target in self.of_type(self.serving, "AWS::ApplicationAutoScaling::ScalableTarget").values():
            properties = self.text(target["Properties"])
            resource = properties.get("ResourceId")
            if isinstance(resource, str) and resource.startswith(f"endpoint/{endpoint_name}/variant/"):
                ranges[resource.rsplit("/", 1)[1]] = (properties["MinCapacity"], properties["MaxCapacity"])
        return ranges

    # --- the checks ---

    def violations(self) -> list[Violation]:
        found = self.training_jobs()
        for logical_id, resource in self.of_type(self.serving, "AWS::SageMaker::Model").items():
            found += api.check("CreateModel", {"ModelName": logical_id, **self.text(resource["Properties"])}, self)
        for logical_id, resource in self.of_type(self.serving, "AWS::SageMaker::EndpointConfig").items():
            request = {"EndpointConfigName": logical_id, **self.text(resource["Properties"])}
            found += api.check("CreateEndpointConfig", request, self)
        for logical_id, resource in self.of_type(self.serving, "AWS::SageMaker::Endpoint").items():
            request = self.text(resource["Properties"])
            found += api.check("CreateEndpoint", request, self)
            found += api.check("UpdateEndpoint", request, self)
            found += self.rollback_alarms_readable(logical_id, request)
        return found + self.alarm_topics()

    def training_jobs(self) -> list[Violation]:
        found = []
        for resource in self.of_type(self.serving, PACKAGING_TYPE).values():
            properties = as_sent_to_custom_resource(self.text(resource["Properties"]))
            props = parse_properties(properties)
            request = training_job_request(job_name(props), props, job_contract())
            found += api.check("CreateTrainingJob", request, self)
        return found

    def rollback_alarms_readable(self, endpoint: str, request: dict) -> list[Violation]:
        alarms = [
            a["AlarmName"]
            for a in ((request.get("DeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}).get("Alarms", [])
        ]
        defined = {
            self.text(a["Properties"].get("AlarmName"))
            for a in self.of_type(self.serving, "AWS::CloudWatch::Alarm").values()
        }
        found = [
            violation("rollback-alarms", endpoint, f"rollback alarm {name} is no alarm of the template")
            for name in alarms
            if name not in defined
        ]
        statements = self.role_statements()
        missing = [
            name
            for name in alarms
            if not proves(
                statements, None, "cloudwatch:DescribeAlarms", lambda arn, n=name: self.is_alarm_arn(arn, n), ()
            )
        ]
        if missing:
            found.append(violation("rollback-alarms", endpoint, f"the Model's role may not describe {missing}"))
        return found

    def is_alarm_arn(self, arn: Any, name: str) -> bool:
        match = ALARM_ARN.match(arn) if isinstance(arn, str) else None
        return bool(
            match and match["region"] in self.regions and match["account"] in self.accounts and match["name"] == name
        )

    def role_statements(self) -> list[dict]:
        """The statements of the Models' execution roles' policies (in the serving stack)."""
        roles = set()
        for model in self.of_type(self.serving, "AWS::SageMaker::Model").values():
            role = model["Properties"].get("ExecutionRoleArn")
            if isinstance(role, dict) and "Fn::GetAtt" in role:
                roles.add(role["Fn::GetAtt"][0])
        return [
            self.text(statement)
            for policy in self.of_type(self.serving, "AWS::IAM::Policy").values()
            if {r.get("Ref") for r in policy["Properties"].get("Roles", [])} & roles
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def alarm_topics(self) -> list[Violation]:
        found = []
        topics = self.of_type(self.serving, "AWS::SNS::Topic")
        for logical_id, alarm in self.of_type(self.serving, "AWS::CloudWatch::Alarm").items():
            properties = alarm["Properties"]
            for action in [
                a for key in ("AlarmActions", "OKActions", "InsufficientDataActions") for a in properties.get(key, [])
            ]:
                topic_id = action.get("Ref", "") if isinstance(action, dict) else ""
                if topic_id not in topics:
                    continue
                alarm_name = self.text(properties.get("AlarmName"))
                if not self.key_lets_cloudwatch_publish(
                    topics[topic_id]["Properties"].get("KmsMasterKeyId"), alarm_name
                ):
                    found.append(violation("alarm-topic-key", logical_id, f"topic {topic_id}'s key refuses CloudWatch"))
                if not self.topic_lets_cloudwatch_publish(topic_id, alarm_name):
                    found.append(
                        violation("alarm-topic-key", logical_id, f"topic {topic_id}'s policy refuses CloudWatch")
                    )
        return found

    def key_lets_cloudwatch_publish(self, key: Any, alarm_name: Any) -> bool:
        if not isinstance(key, dict):
            return key is None  # no encryption, or a literal key such as alias/aws/sns
        logical_id = key.get("Fn::GetAtt", [key.get("Ref")])[0]
        resource = self.serving.get(logical_id, {})
        if resource.get("Type") != "AWS::KMS::Key":
            return False
        statements = self.text(resource["Properties"]["KeyPolicy"]["Statement"])
        return all(
            proves(statements, CLOUDWATCH, action, lambda _: True, self.alarm_conditions(alarm_name))
            for action in ("kms:Decrypt", "kms:GenerateDataKey")
        )

    def topic_lets_cloudwatch_publish(self, topic_id: str, alarm_name: Any) -> bool:
        policies = [
            p["Properties"]
            for p in self.of_type(self.serving, "AWS::SNS::TopicPolicy").values()
            if {"Ref": topic_id} in p["Properties"].get("Topics", [])
        ]
        if not policies:
            return True  # SNS's default policy lets the account's alarms publish
        statements = [self.text(s) for p in policies for s in p["PolicyDocument"]["Statement"]]
        return proves(statements, CLOUDWATCH, "sns:Publish", lambda _: True, self.alarm_conditions(alarm_name))

    def alarm_conditions(self, alarm_name: Any) -> tuple[dict, ...]:
        """The conditions a statement for CloudWatch may carry and still be proved to
        hold for the alarm `alarm_name`: its ARN, its account."""
        return (
            {
                "ArnLike": {
                    "aws:SourceArn": lambda arns: any(
                        self.is_alarm_arn(a, alarm_name) for a in (arns if isinstance(arns, list) else [arns])
                    )
                }
            },
            {"StringEquals": {"aws:SourceAccount": lambda account: account in self.accounts}},
        )


def as_sent_to_custom_resource(value: Any) -> Any:
    """Properties as CloudFormation hands them to a custom resource: every scalar
    a string (an unknown one a placeholder)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return _UNKNOWN
    if isinstance(value, dict):
        return {k: as_sent_to_custom_resource(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sent_to_custom_resource(v) for v in value]
    return value


def check_stage(serving_template: dict, account: str | None = None, region: str | None = None) -> list[Violation]:
    """Every rule the stage's serving template breaks (every SageMaker resource,
    and the roles, alarms and keys they use, is in it); `account` and `region` are
    the stage's, when it pins them."""
    return _Stage(serving_template, account, region).violations()
