"""PackagingRole on its own, in a bare stack: its jobs read the training data, write
only their own folders, and use the volume key only through SageMaker's grants."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.model_packaging.packaging_role import PackagingRole
from stacks.stage.images import training_image

# Each test synthesizes a bare stack.
pytestmark = pytest.mark.synth

KEY = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("volume_key", [KEY, None], ids=["volume key", "no key"])
def test_jobs_write_only_their_own_folders(volume_key):
    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    PackagingRole(
        stack,
        "Role",
        bucket=s3.Bucket(stack, "Bucket"),
        job_name_prefix="bare-pkg",
        image=training_image("eu-west-1", "ml.m5.xlarge"),
        training_data_prefix="trainingData/",
        output_prefix="artifacts/packaging/",
        volume_key_arn=volume_key,
    )
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert "artifacts/packaging/bare-pkg-*" in json.dumps(statements["WriteJobFolders"]["Resource"])
    writes = [s for s in statements.values() if "s3:PutObject" in json.dumps(s["Action"])]
    assert list(statements).count("WriteJobFolders") == 1 and len(writes) == 1
    if volume_key:
        grant = statements["GrantVolumeKeyToSageMaker"]
        assert grant["Resource"] == KEY
        assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    else:
        assert not any("kms:" in json.dumps(s["Action"]) for s in statements.values())
