"""ministack, with CloudFormation resource types for SageMaker's Model, EndpointConfig
and Endpoint, for the rehearsal.

ministack's CloudFormation refuses `AWS::SageMaker::*` ("Unsupported resource
type"). This launcher registers provisioners for the three types the serving
stack uses, then runs ministack as `ministack` would. The provisioners call the
SageMaker API at AWS_ENDPOINT_URL_SAGEMAKER (the rehearsal's SageMaker, which
checks each request before moto sees it), the way CloudFormation's own
resource handlers call SageMaker. They follow the CloudFormation resource
reference: Ref is the ARN; Model and EndpointConfig are replaced on any
change but Tags; the Endpoint keeps its name and is updated in place to a new
config (UpdateEndpoint with the template's deployment settings).

Runs with the emulators' interpreter (`.venv-emulators`), never imported by
the project.
"""

from __future__ import annotations

import os
import sys

import boto3
from ministack.core.responses import get_account_id, get_region
from ministack.services.cloudformation import provisioners
from ministack.services.cloudformation import stacks as cloudformation_stacks

_INTEGER_FIELDS = {
    "InitialInstanceCount",
    "MemorySizeInMB",
    "MaxConcurrency",
    "InitialSamplingPercentage",
    "WaitIntervalInSeconds",
    "TerminationWaitInSeconds",
    "MaximumExecutionTimeoutInSeconds",
    "Value",
    "ProvisionedConcurrency",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
}
_FLOAT_FIELDS = {"InitialVariantWeight"}
_BOOLEAN_FIELDS = {"EnableNetworkIsolation", "EnableCapture", "RetainAllVariantProperties"}


def _sagemaker():
    return boto3.client(
        "sagemaker",
        region_name=get_region(),
        endpoint_url=os.environ["AWS_ENDPOINT_URL_SAGEMAKER"],
    )


def _typed(value, key=None):
    """Template values as the API takes them (CloudFormation hands some over as strings)."""
    if isinstance(value, dict):
        return {k: _typed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v, key) for v in value]
    if key in _INTEGER_FIELDS:
        return int(value)
    if key in _FLOAT_FIELDS:
        return float(value)
    if key in _BOOLEAN_FIELDS:
        return str(value).lower() == "true"
    return value


def _arn(kind: str, name: str) -> str:
    # SageMaker lower-cases the name in an ARN; the name itself keeps its case,
    # and the delete handlers take it back from here.
    return f"arn:aws:sagemaker:{get_region()}:{get_account_id()}:{kind}/{name}"


def _name(physical_id: str) -> str:
    return physical_id.rsplit("/", 1)[-1]


def _tags(props: dict) -> list[dict]:
    return [{"Key": t["Key"], "Value": t["Value"]} for t in props.get("Tags", [])]


def _retag(arn: str, old_props: dict, new_props: dict) -> None:
    old, new = {t["Key"]: t["Value"] for t in _tags(old_props)}, {t["Key"]: t["Value"] for t in _tags(new_props)}
    client = _sagemaker()
    if set(old) - set(new):
        client.delete_tags(ResourceArn=arn, TagKeys=sorted(set(old) - set(new)))
    if new != old:
        client.add_tags(ResourceArn=arn, Tags=_tags(new_props))


def model_create(logical_id, props, stack_name):
    name = provisioners._physical_name(stack_name, logical_id, max_len=63)
    request = _typed({k: v for k, v in props.items() if k not in ("Tags", "ModelName")})
    _sagemaker().create_model(ModelName=name, Tags=_tags(props), **request)
    return _arn("model", name), {"ModelName": name, "ModelId": name}


def model_update(physical_id, old_props, new_props, stack_name):
    _retag(physical_id, old_props, new_props)
    return physical_id, {"ModelName": _name(physical_id), "ModelId": _name(physical_id)}


def model_delete(physical_id, props):
    _sagemaker().delete_model(ModelName=_name(physical_id))


def config_create(logical_id, props, stack_name):
    name = provisioners._physical_name(stack_name, logical_id, max_len=63)
    request = _typed({k: v for k, v in props.items() if k not in ("Tags", "EndpointConfigName")})
    _sagemaker().create_endpoint_config(EndpointConfigName=name, Tags=_tags(props), **request)
    return _arn("endpoint-config", name), {"EndpointConfigName": name}


def config_update(physical_id, old_props, new_props, stack_name):
    _retag(physical_id, old_props, new_props)
    return physical_id, {"EndpointConfigName": _name(physical_id)}


def config_delete(physical_id, props):
    _sagemaker().delete_endpoint_config(EndpointConfigName=_name(physical_id))


def endpoint_create(logical_id, props, stack_name):
    name = props.get("EndpointName") or provisioners._physical_name(stack_name, logical_id, max_len=63)
    request = {"EndpointName": name, "EndpointConfigName": props["EndpointConfigName"], "Tags": _tags(props)}
    if "DeploymentConfig" in props:
        request["DeploymentConfig"] = _typed(props["DeploymentConfig"])
    _sagemaker().create_endpoint(**request)
    arn = _arn("endpoint", name)
    return arn, {"EndpointName": name, "EndpointArn": arn}


def endpoint_update(physical_id, old_props, new_props, stack_name):
    name = _name(physical_id)
    if old_props.get("EndpointConfigName") != new_props["EndpointConfigName"]:
        request = {"EndpointName": name, "EndpointConfigName": new_props["EndpointConfigName"]}
        for key in (
            "DeploymentConfig",
            "RetainAllVariantProperties",
            "ExcludeRetainedVariantProperties",
            "RetainDeploymentConfig",
        ):
            if key in new_props:
                request[key] = _typed(new_props[key], key)
        _sagemaker().update_endpoint(**request)
    _retag(physical_id, old_props, new_props)
    return physical_id, {"EndpointName": name, "EndpointArn": physical_id}


def endpoint_delete(physical_id, props):
    _sagemaker().delete_endpoint(EndpointName=_name(physical_id))


def register() -> None:
    """Teach ministack's CloudFormation the three SageMaker types."""
    handlers = {
        "AWS::SageMaker::Model": (model_create, model_update, model_delete),
        "AWS::SageMaker::EndpointConfig": (config_create, config_update, config_delete),
        "AWS::SageMaker::Endpoint": (endpoint_create, endpoint_update, endpoint_delete),
    }
    for resource_type, (create, update, delete) in handlers.items():
        provisioners._RESOURCE_HANDLERS[resource_type] = {"create": create, "update": update, "delete": delete}
    # Any change but Tags replaces a Model or an EndpointConfig; only a new
    # name replaces an Endpoint (CloudFormation resource reference, "Update requires").
    provisioners._REPLACING_PROPERTIES["AWS::SageMaker::Model"] = (
        "Containers",
        "EnableNetworkIsolation",
        "ExecutionRoleArn",
        "InferenceExecutionConfig",
        "ModelName",
        "PrimaryContainer",
        "VpcConfig",
    )
    provisioners._REPLACING_PROPERTIES["AWS::SageMaker::EndpointConfig"] = (
        "AsyncInferenceConfig",
        "DataCaptureConfig",
        "EndpointConfigName",
        "ExplainerConfig",
        "KmsKeyId",
        "ProductionVariants",
        "ShadowProductionVariants",
    )
    provisioners._REPLACING_PROPERTIES["AWS::SageMaker::Endpoint"] = ("EndpointName",)
    # The provisioners block on the rehearsal's SageMaker, which may call back
    # into ministack (S3): run them on a worker thread, not the event loop.
    on_worker = cloudformation_stacks._runs_on_worker_thread
    cloudformation_stacks._runs_on_worker_thread = lambda resource_type: (
        resource_type.startswith("AWS::SageMaker::") or on_worker(resource_type)
    )


if __name__ == "__main__":
    register()
    from ministack.app import main

    sys.argv = ["ministack"]
    main()
