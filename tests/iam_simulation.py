"""IAM's evaluation of a stage's synthesized policies, offline.

Neither moto nor ministack evaluates bucket policies with S3's condition keys
(`s3:if-none-match`, `s3:ObjectCreationOperation`), so the requests are
evaluated by iam-simulate (`tests/iam_simulate.mjs`), which implements IAM's
policy evaluation logic over the Service Authorization Reference's actions and
condition keys. The templates' intrinsics are resolved to made-up ARNs first:
each role is `arn:aws:iam::<ACCOUNT>:role/<logical id>`, the artifact bucket
`arn:aws:s3:::<BUCKET>`, and any other value a test names.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
ACCOUNT = "111111111111"
BUCKET = "stage-bucket"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
_ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Request:
    principal: str  # a role logical id of the templates, or ADMIN
    action: str
    key: str
    context: dict[str, str] = field(default_factory=dict)


class Account:
    """The stage's roles and artifact bucket, as IAM would see them deployed."""

    def __init__(self, *templates: dict, values: dict[str, str] | None = None) -> None:
        self.resources = {k: v for t in templates for k, v in t["Resources"].items()}
        self.values = dict(values or {})
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                self.values[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
        for template in templates:
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    self.values[f"import:{output['Export']['Name']}"] = self.resolve(output["Value"])

    def bucket_logical_id(self) -> str:
        (logical_id,) = [
            k
            for k, r in self.resources.items()
            if r["Type"] == "AWS::S3::Bucket" and "LoggingConfiguration" in r["Properties"]
        ]
        return logical_id

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(part)) for part in parts)
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute == "Arn" and self.resources.get(logical_id, {}).get("Type") == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{BUCKET}"
            return self.values.get(
                logical_id if attribute == "Arn" else f"{logical_id}.{attribute}", f"<{logical_id}.{attribute}>"
            )
        if "Ref" in value:
            return {
                "AWS::Partition": "aws",
                "AWS::AccountId": ACCOUNT,
                "AWS::Region": "eu-west-1",
                "AWS::URLSuffix": "amazonaws.com",
            }.get(value["Ref"], self.values.get(value["Ref"], BUCKET))
        if "Fn::ImportValue" in value:
            return self.values[f"import:{value['Fn::ImportValue']}"]
        return {k: self.resolve(v) for k, v in value.items()}

    def role_arn(self, logical_id: str) -> str:
        return self.values[logical_id]

    def identity_policies(self, role: str) -> list[dict]:
        if role == ADMIN:
            return [{"name": "AdministratorAccess", "policy": _ADMIN_POLICY}]
        policies = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            roles = self.resolve(resource["Properties"].get("Roles", []))
            # Roles are referenced by name: {"Ref": id} resolves to the role's ARN here.
            if self.role_arn(role) in roles or role in roles:
                policies.append({"name": logical_id, "policy": self.resolve(resource["Properties"]["PolicyDocument"])})
        return policies

    def bucket_policy(self) -> dict:
        bucket = self.bucket_logical_id()
        (policy,) = [
            r
            for r in self.resources.values()
            if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
        ]
        return self.resolve(policy["Properties"]["PolicyDocument"])

    def decide(self, *requests: Request) -> list[str]:
        """IAM's decision for each request: Allowed, ImplicitlyDenied or ExplicitlyDenied."""
        bucket_policy = self.bucket_policy()
        simulations = []
        for request in requests:
            principal = request.principal if request.principal == ADMIN else self.role_arn(request.principal)
            simulations.append(
                {
                    "identityPolicies": self.identity_policies(request.principal),
                    "serviceControlPolicies": [],
                    "resourceControlPolicies": [],
                    "resourcePolicy": bucket_policy,
                    "request": {
                        "principal": principal,
                        "action": request.action,
                        "resource": {"resource": f"arn:aws:s3:::{BUCKET}/{request.key}", "accountId": ACCOUNT},
                        # A role session's aws:PrincipalArn is the role's ARN.
                        "contextVariables": {
                            "aws:PrincipalArn": principal,
                            "aws:SecureTransport": "true",
                            **request.context,
                        },
                    },
                }
            )
        return simulate(simulations)


def decide_on(resource_policy: dict, resource: str, principal: str, action: str, context: dict[str, str]) -> str:
    """IAM's decision for one request that only a resource policy can allow (a
    service principal's, such as CloudWatch publishing to a topic)."""
    (answer,) = simulate(
        [
            {
                "identityPolicies": [],
                "serviceControlPolicies": [],
                "resourceControlPolicies": [],
                "resourcePolicy": resource_policy,
                "request": {
                    "principal": principal,
                    "action": action,
                    "resource": {"resource": resource, "accountId": resource.split(":")[4]},
                    "contextVariables": context,
                },
            }
        ]
    )
    return answer


def simulate(simulations: list[dict], evaluator: str = "iam_simulate.mjs") -> list[str]:
    """IAM's decision for each simulation, by `evaluator` (a script of tests/)."""
    answers = json.loads(
        subprocess.run(
            [str(ROOT / "node_modules" / ".bin" / "node"), str(ROOT / "tests" / evaluator)],
            input=json.dumps(simulations),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    for simulation, answer in zip(simulations, answers, strict=True):
        assert not answer["errors"], (simulation["request"], answer["errors"])
    return [answer["result"] for answer in answers]
