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

from stacks.rulebook import Violation, violation
from stacks.rulebook import requests as api

PACKAGING_TYPE = "Custom::TfHubPackagingJob"
_UNKNOWN = "{?}"


class _Stage:
    def __init__(self, serving: dict) -> None:
        self.serving = serving["Resources"]

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
            if resource.get("Type") == PACKAGING_TYPE and attribute == "ArtifactKey":
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

    def scalable_variants(self, endpoint_name: str) -> set[str]:
        return set()

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
        from stacks.packaging_handler.handler import job_name, parse_properties, training_job_request

        found = []
        for resource in self.of_type(self.serving, PACKAGING_TYPE).values():
            properties = as_sent_to_custom_resource(self.text(resource["Properties"]))
            props = parse_properties(properties)
            found += api.check("CreateTrainingJob", training_job_request(job_name(props), props), self)
        return found

    def rollback_alarms_readable(self, endpoint: str, request: dict) -> list[Violation]:
        alarms = [a["AlarmName"] for a in ((request.get("DeploymentConfig") or {}).get(
            "AutoRollbackConfiguration") or {}).get("Alarms", [])]
        if not alarms:
            return []
        readable = self.role_resources("cloudwatch:DescribeAlarms")
        missing = [a for a in alarms if not any(isinstance(r, str) and r.endswith(f":alarm:{a}") for r in readable)]
        if missing:
            return [violation("rollback-alarms", endpoint, f"the Model's role may not describe {missing}")]
        return []

    def role_resources(self, action: str) -> list[str]:
        """Resources the Models' execution roles (in the serving stack) may `action`."""
        roles = set()
        for model in self.of_type(self.serving, "AWS::SageMaker::Model").values():
            role = model["Properties"].get("ExecutionRoleArn")
            if isinstance(role, dict) and "Fn::GetAtt" in role:
                roles.add(role["Fn::GetAtt"][0])
        resources = []
        for policy in self.of_type(self.serving, "AWS::IAM::Policy").values():
            properties = policy["Properties"]
            if not {r.get("Ref") for r in properties.get("Roles", [])} & roles:
                continue
            for statement in properties["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement["Effect"] == "Allow" and action in actions:
                    listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    resources += [self.text(r) for r in listed]
        return resources

    def alarm_topics(self) -> list[Violation]:
        found = []
        topics = self.of_type(self.serving, "AWS::SNS::Topic")
        for logical_id, alarm in self.of_type(self.serving, "AWS::CloudWatch::Alarm").items():
            for action in alarm["Properties"].get("AlarmActions", []):
                topic = topics.get(action.get("Ref", "") if isinstance(action, dict) else "")
                if topic is not None and not self.key_lets_cloudwatch_publish(topic["Properties"].get("KmsMasterKeyId")):
                    found.append(violation("alarm-topic-key", logical_id, f"topic {action['Ref']} cannot take it"))
        return found

    def key_lets_cloudwatch_publish(self, key: Any) -> bool:
        if not isinstance(key, dict):
            return key is None  # no encryption, or a literal key such as alias/aws/sns
        logical_id = key.get("Fn::GetAtt", [key.get("Ref")])[0]
        resource = self.serving.get(logical_id, {})
        if resource.get("Type") != "AWS::KMS::Key":
            return False
        needed = {"kms:Decrypt", "kms:GenerateDataKey*"}
        for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
            services = statement.get("Principal", {}).get("Service", [])
            services = services if isinstance(services, list) else [services]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] == "Allow" and "cloudwatch.amazonaws.com" in services:
                needed -= set(actions)
        return not needed


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


def check_stage(serving_template: dict) -> list[Violation]:
    """Every rule the stage's serving template breaks (every SageMaker resource,
    and the roles, alarms and keys they use, is in it)."""
    return _Stage(serving_template).violations()
