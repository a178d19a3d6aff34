"""A stored template's values evaluated as CloudFormation builds them: the checks read
the account, bucket or principal a value makes, however its pieces are split."""

from __future__ import annotations

import pytest

from delivery.artifacts import PromotionError
from delivery.intrinsics import BUCKET_ARN, BUCKET_NAME, Evaluator, Reference, shown
from stacks.stage.names import StageNames
from tests.delivery.world import REGION

STAGING = StageNames("tfhub-serving", "staging")
ACCOUNT = "222222222222"
EVALUATOR = Evaluator({"Role", "Alarm"}, STAGING, ACCOUNT, REGION)

EVALUATED = {
    "join-split-account": (
        {"Fn::Join": ["", ["arn:aws:iam::", "111111", "111111", ":root"]]},
        "arn:aws:iam::111111111111:root",
    ),
    "sub-variable-map": (
        {"Fn::Sub": ["arn:aws:iam::${A}${B}:root", {"A": "111111", "B": {"Fn::Join": ["", ["11", "1111"]]}}]},
        "arn:aws:iam::111111111111:root",
    ),
    "sub-pseudo-and-literal": (
        {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:${!Kept}"},
        f"arn:aws:logs:{REGION}:{ACCOUNT}:${{Kept}}",
    ),
    "select-split": (
        {"Fn::Select": ["1", {"Fn::Split": [",", "a,arn:aws:iam::111111111111:root"]}]},
        "arn:aws:iam::111111111111:root",
    ),
    "bucket-exports": (
        {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": "tfhub-serving-staging-bucket-name"}, "/datacapture/"]]},
        f"s3://{BUCKET_NAME}/datacapture/",
    ),
    "bucket-arn": ({"Fn::ImportValue": "tfhub-serving-staging-bucket-arn"}, BUCKET_ARN),
    "whole-references": (
        [{"Ref": "Role"}, {"Fn::GetAtt": ["Role", "Arn"]}, {"Fn::GetAtt": "Alarm.Arn"}],
        [Reference("Role"), Reference("Role", "Arn"), Reference("Alarm", "Arn")],
    ),
    "nested-objects": ({"Statement": [{"Effect": "Allow", "N": 3}]}, {"Statement": [{"Effect": "Allow", "N": 3}]}),
}


@pytest.mark.parametrize(("value", "expected"), EVALUATED.values(), ids=EVALUATED.keys())
def test_values_are_what_cloudformation_would_build(value, expected):
    assert EVALUATOR.tree(value) == expected


def test_a_dashboard_may_put_its_alarms_arns_in_its_body_and_nothing_else_may():
    body = {"Fn::Join": ["", ['{"alarms":["', {"Fn::GetAtt": ["Alarm", "Arn"]}, '"]}']]}
    assert shown(EVALUATOR.tree(body, embed=True)).startswith('{"alarms":["')
    with pytest.raises(PromotionError, match="only a dashboard's body may"):
        EVALUATOR.tree(body)


REFUSED = {
    # AWS::NoValue drops a piece: "111111" + nothing + "111111" is an account.
    "no-value": ({"Fn::Join": ["", ["111111", {"Ref": "AWS::NoValue"}, "111111"]]}, "refers to 'AWS::NoValue'"),
    "parameter": ({"Ref": "SomeParameter"}, "refers to 'SomeParameter'"),
    "sub-unknown": ({"Fn::Sub": "arn:aws:iam::${Other}:root"}, "refers to 'Other'"),
    "sub-resource-in-text": ({"Fn::Sub": "arn:aws:iam::${Alarm}:root"}, "only a dashboard's body may"),
    "reference-in-text": ({"Fn::Join": ["", ["111111", {"Ref": "Alarm"}]]}, "only a dashboard's body may"),
    "other-import": ({"Fn::ImportValue": "tfhub-serving-dev-bucket-name"}, "imports 'tfhub-serving-dev-bucket-name'"),
    "forged-marker": (f"s3://{BUCKET_NAME}/x", "NUL character"),
    "split-marker": ({"Fn::Split": ["-", {"Fn::ImportValue": "tfhub-serving-staging-bucket-arn"}]}, "splits"),
    "if": ({"Fn::If": ["Cond", "a", "b"]}, "uses Fn::If"),
    "base64": ({"Fn::Base64": "x"}, "uses Fn::Base64"),
    "find-in-map": ({"Fn::FindInMap": ["M", "a", "b"]}, "uses Fn::FindInMap"),
    "transform": ({"Fn::Transform": {"Name": "M"}}, "uses Fn::Transform"),
    "mixed-keys": ({"Ref": "Role", "Other": 1}, "mixes Ref with other keys"),
    "select-out-of-range": ({"Fn::Select": [2, ["a", "b"]]}, "selects item 2 of 2"),
    "join-a-number": ({"Fn::Join": ["", ["1", 2]]}, "builds a string from 2"),
    # Malformed arguments end in the refusal too, never in Python's own errors.
    "split-empty-delimiter": ({"Fn::Split": ["", "ab"]}, "splits by an empty delimiter"),
    "select-superscript-digit": ({"Fn::Select": ["²", ["a", "b", "c"]]}, "selects item '²' of 3"),
    "select-more-digits-than-int-takes": ({"Fn::Select": ["9" * 5000, ["a"]]}, "selects item '999"),
    "select-negative": ({"Fn::Select": [-1, ["a"]]}, "selects item -1 of 1"),
    "import-a-list": ({"Fn::ImportValue": ["tfhub-serving-staging-bucket-name"]}, "imports \\['tfhub"),
    "getatt-of-objects": ({"Fn::GetAtt": [{"a": 1}, "Arn"]}, "refers to \\{'a': 1\\}"),
}


@pytest.mark.parametrize(("value", "refusal"), REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_be_evaluated_whole_is_refused(value, refusal):
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}") as refused:
        EVALUATOR.tree(value)
    assert len(str(refused.value)) < 400 and "\n" not in str(refused.value)
