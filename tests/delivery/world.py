"""Two accounts in moto, a packaged model in dev's bucket, and the helpers the promotion tests share."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import pathlib
import tarfile
from typing import cast

import aws_cdk as cdk
import boto3

from delivery import promote as promotion
from fixtures.demo_model import save_text_model
from packaging_job.packager.package import package
from stacks.stage.names import StageNames
from stacks.stage.schema import ModelConfig
from tests.conftest import cdk_json_context, synth_stage


def passes(stage: str) -> dict:
    """A smoke test the deployed stage passes."""
    return {
        "endpoint": f"tfhub-serving-{stage}",
        "instances": 1,
        "latency_ms": 5.0,
        "checked_values": True,
        "problems": [],
    }


def fails(stage: str) -> dict:
    return {**passes(stage), "problems": ["output 'embedding' is 0.2, the packaged model answered 0.1"]}


def promote(*args, **kwargs):
    """A promotion whose target passes its smoke test unless a test says otherwise."""
    return promotion.promote(*args, **{"smoke": passes, **kwargs})


def rollback(*args, **kwargs):
    return promotion.rollback(*args, **{"smoke": passes, **kwargs})


StageAccess = promotion.StageAccess


DEV_ACCOUNT, STAGING_ACCOUNT = "111111111111", "222222222222"


REGION = "eu-west-1"


DEV, SLS = StageNames("tfhub-serving", "dev"), StageNames("tfhub-serving", "sls")
# Where a packaging job of dev leaves its model (instances: a prefix); a promotion
# takes a source artifact only from its own stage's job folders.
JOB_PREFIX = f"{DEV.packaging_output_prefix}0123456789ab/output/model/"
# The model the `packaged` fixture packages, as a target stage's config names it.
MODEL = ModelConfig("use", 4, "https://example.com/use.tar.gz")


NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def session(account: str):
    """Credentials of `account`, through moto's STS as a CI role assumption would."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/deploy", RoleSessionName="test"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def stack_with_outputs(cloudformation, name: str, outputs: dict[str, str], exports: dict[str, str] | None = None):
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            **{key: {"Value": value} for key, value in outputs.items()},
            **{
                f"Export{i}": {"Value": value, "Export": {"Name": name_}}
                for i, (name_, value) in enumerate((exports or {}).items())
            },
        },
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def keys(s3, bucket, prefix=""):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def promoted(digest: str) -> str:
    return f"artifacts/promoted/{digest}/model/"


def upload_archive(s3, bucket: str, key: str, model_dir: pathlib.Path, extra: tarfile.TarInfo | None = None) -> None:
    """The packaged model as SageMaker packs /opt/ml/model for CompressionType GZIP."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=f"./{path.relative_to(model_dir).as_posix()}")
        if extra is not None:
            archive.addfile(extra)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


# Where a packaging job of the serverless `sls` stage (`serverless_dev`) leaves its model.tar.gz.
ARCHIVE_KEY = f"{SLS.packaging_output_prefix}fedcba987654/output/model.tar.gz"


def repackage(dev, model_name: str) -> str:
    """Put another packaged model where dev's stack points; return its digest."""
    import tempfile

    work = pathlib.Path(tempfile.mkdtemp())
    model = save_text_model(str(work / "src" / "model"), seed=7)
    new = package(model, str(work / "model"), "use", 4, log=lambda m: None)
    for key in keys(dev.s3, "dev-bucket", JOB_PREFIX):
        dev.s3.delete_object(Bucket="dev-bucket", Key=key)
    for path in sorted((work / "model").rglob("*")):
        if path.is_file():
            dev.s3.upload_file(str(path), "dev-bucket", JOB_PREFIX + path.relative_to(work / "model").as_posix())
    dev.cloudformation.delete_stack(StackName="tfhub-serving-dev-serving")
    stack_with_outputs(
        dev.cloudformation,
        "tfhub-serving-dev-serving",
        {"ArtifactLocation": f"s3://dev-bucket/{JOB_PREFIX}", "TreeDigest": new["tree_digest"]},
    )
    return new["tree_digest"]


def serve_pinned(staging, packaged_dir: pathlib.Path, digest: str, key: str = "artifacts/pinned/use/4/") -> str:
    """staging as its first deploy left it: serving a pinned prefix of its bucket."""
    for path in sorted(packaged_dir.rglob("*")):
        if path.is_file():
            staging.s3.upload_file(str(path), "staging-bucket", key + path.relative_to(packaged_dir).as_posix())
    stack_with_outputs(
        staging.cloudformation,
        "tfhub-serving-staging-serving",
        {"ArtifactLocation": f"s3://staging-bucket/{key}", "TreeDigest": digest},
    )
    return f"s3://staging-bucket/{key}"


# What cdk.json pins staging and prod to; their synthesized serving stacks serve it.
PINNED = "artifacts/universal-sentence-encoder/4/model.tar.gz"


def serving_assembly(into: pathlib.Path, key: str, digest: str, description: str) -> pathlib.Path:
    """Staging's assembly as a promotion synthesizes it to serve `key` reporting `digest`,
    its serving template marked with `description` (to tell assemblies apart)."""
    stage = synth_stage("staging", into, {**cdk_json_context(), "artifact": key, "artifact_digest": digest})
    cast(cdk.App, cdk.App.of(stage.storage)).synth()
    template_path = into / "tfhub-serving-staging-serving.template.json"
    template = json.loads(template_path.read_text())
    template["Description"] = description
    template_path.write_text(json.dumps(template))
    return into


def only_listed_files(s3, bucket: str, prefix: str, record: dict) -> list[str]:
    """Assert that everything under `prefix` is a file the manifest lists, with its
    bytes, and that there is no manifest (the copy is not complete); return the paths."""
    listed = {entry["path"]: entry["sha256"] for entry in record["files"]}
    paths = []
    for key in keys(s3, bucket, prefix):
        path = key.removeprefix(prefix)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == listed[path], path
        paths.append(path)
    return paths
