"""What is in the emulated account: what the scenario inspects after each command."""

from __future__ import annotations

import json
from typing import Any

from delivery.artifact_forms import read_manifest
from rehearsal.cloudformation import as_sent_to_custom_resource, resolve
from rehearsal.emulators import ACCOUNT, REGION, Emulators
from rehearsal.serving import model_data
from stacks.model_packaging.handler_asset.packaging_handler.job_request import RESOURCE_TYPE as PACKAGING_TYPE
from stacks.model_packaging.job_contract import job_contract


class Account:
    def __init__(self, aws: Emulators) -> None:
        self.aws = aws
        self.cloudformation = aws.client("cloudformation")
        self.s3 = aws.client("s3")
        self.sagemaker = aws.client("sagemaker")

    def stacks(self) -> dict[str, str]:
        return {
            s["StackName"]: s["StackStatus"]
            for s in self.cloudformation.list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"
        }

    def outputs(self, stack: str) -> dict[str, str]:
        (description,) = self.cloudformation.describe_stacks(StackName=stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

    def export(self, name: str) -> str:
        (value,) = [e["Value"] for e in self.cloudformation.list_exports()["Exports"] if e["Name"] == name]
        return value

    def status(self, stack: str) -> str:
        (description,) = self.cloudformation.describe_stacks(StackName=stack)["Stacks"]
        return description["StackStatus"]

    def physical_id(self, stack: str, resource_type: str) -> str:
        resources = self.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        (resource,) = [r for r in resources if r["ResourceType"] == resource_type]
        return resource["PhysicalResourceId"]

    def events(self, stack: str) -> list[dict]:
        return self.cloudformation.describe_stack_events(StackName=stack)["StackEvents"]

    def failure_reasons(self, stack: str) -> list[str]:
        return [
            e.get("ResourceStatusReason", "") for e in self.events(stack) if e["ResourceStatus"].endswith("_FAILED")
        ]

    def jobs(self) -> list[str]:
        return sorted(j["TrainingJobName"] for j in self.sagemaker.list_training_jobs()["TrainingJobSummaries"])

    def serving(self, endpoint: str) -> dict[str, Any]:
        """The endpoint, its config, its one variant and its model, as SageMaker describes them."""
        described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        (variant,) = config["ProductionVariants"]
        model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        return {"endpoint": described, "config": config, "variant": variant, "model": model, "data": model_data(model)}

    def template(self, stack: str) -> dict:
        body = self.cloudformation.get_template(StackName=stack)["TemplateBody"]
        return body if isinstance(body, dict) else json.loads(body)

    def expected_job(self, serving_stack: str) -> tuple[str, dict[str, Any]]:
        """The job name and request the packaging handler must send, from the deployed template."""
        from stacks.model_packaging.handler_asset.packaging_handler import handler

        (resource,) = [r for r in self.template(serving_stack)["Resources"].values() if r["Type"] == PACKAGING_TYPE]
        exports = {e["Name"]: e["Value"] for e in self.cloudformation.list_exports()["Exports"]}
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        props = handler.parse_properties(as_sent_to_custom_resource(resolve(resource["Properties"], exports, pseudo)))
        name = handler.job_name(props)
        return name, handler.training_job_request(name, props, job_contract())

    def manifest(self, artifact: str) -> dict[str, Any]:
        return read_manifest(self.s3, artifact)

    def buckets(self, stack: str) -> list[str]:
        return [
            r["PhysicalResourceId"]
            for r in self.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
            if r["ResourceType"] == "AWS::S3::Bucket"
        ]

    def tag_buckets_as_cloudformation_would(self, stack: str) -> None:
        """ministack's CloudFormation drops AWS::S3::Bucket Tags, and CDK's auto-delete
        handler empties a bucket on destroy only when it carries its tag: put on the
        deployed template's tags."""
        template = self.template(stack)
        resources = self.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::S3::Bucket" and resource["Properties"].get("Tags"):
                self.s3.put_bucket_tagging(
                    Bucket=physical[logical_id], Tagging={"TagSet": resource["Properties"]["Tags"]}
                )
