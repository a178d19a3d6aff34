"""What the preview role may do (read prod's two deployed templates), and that this is
all the pinned CDK CLI's `cdk diff --method template` of prod's assembly needs."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.account_setup.world import (
    ACCOUNTS,
    PROD_STACKS,
    REGIONS,
    Synthesized,
    account_trust,
    as_list,
    prod_account,
    role_arn,
)
from tests.conftest import ROOT
from tests.iam_simulation import simulate

ACCOUNT, REGION = ACCOUNTS["prod"], REGIONS["prod"]
PREVIEW = role_arn("prod", "github-preview")
# One AWS call in the CLI's -vvv trace: `[SDK info] CloudFormation.GetTemplate({...}) -> OK`.
TRACED_CALL = re.compile(r"\[SDK (?:info|error)\] (\w+)\.(\w+)\((\{.*?\})\) -> (\w+)")


def stack(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/0a1b2c3d"


def bootstrap_role(kind: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-{kind}-{ACCOUNT}-{REGION}"


def preview_statements(synth: Synthesized) -> dict[str, dict]:
    found = synth.role("-github-preview")
    assert found is not None
    return synth.statements(found[0])


def decisions(synth: Synthesized, calls: list[tuple[str, str]]) -> list[str]:
    """IAM's decision on each (action, resource) the preview role's session asks for; an
    assumed role trusts its account, as the bootstrap roles do."""
    found = synth.role("-github-preview")
    assert found is not None
    policies = [{"name": name, "policy": doc} for name, doc in synth.policies(found[0]).items()]
    return simulate(
        [
            {
                "identityPolicies": policies,
                "serviceControlPolicies": [],
                "resourceControlPolicies": [],
                **({"resourcePolicy": account_trust(ACCOUNT)} if action == "sts:AssumeRole" else {}),
                "request": {
                    "principal": PREVIEW,
                    "action": action,
                    "resource": {"resource": resource, "accountId": ACCOUNT},
                    "contextVariables": {"aws:PrincipalArn": PREVIEW},
                },
            }
            for action, resource in calls
        ]
    )


def test_the_preview_role_may_read_only_prods_two_deployed_templates(ci_access):
    (statement,) = preview_statements(ci_access("prod")).values()
    assert {**statement, "Resource": sorted(statement["Resource"])} == {
        "Sid": "ReadTheDeployedTemplates",
        "Effect": "Allow",
        "Action": ["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
        "Resource": sorted(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/*" for name in PROD_STACKS),
    }


def test_iam_lets_the_preview_role_read_the_templates_and_nothing_else(ci_access):
    storage, serving = PROD_STACKS
    cases = {
        "the storage stack described": (("cloudformation:DescribeStacks", stack(storage)), "Allowed"),
        "the storage template": (("cloudformation:GetTemplate", stack(storage)), "Allowed"),
        "the serving stack described": (("cloudformation:DescribeStacks", stack(serving)), "Allowed"),
        "the serving template": (("cloudformation:GetTemplate", stack(serving)), "Allowed"),
        "the account setup's template": (
            ("cloudformation:GetTemplate", stack("tfhub-serving-prod-ci-access")),
            "ImplicitlyDenied",
        ),
        "the bootstrap stack": (("cloudformation:DescribeStacks", stack("CDKToolkit")), "ImplicitlyDenied"),
        "a same-named stack of another account": (
            ("cloudformation:GetTemplate", stack(serving, account="999999999999")),
            "ImplicitlyDenied",
        ),
        "a same-named stack of another region": (
            ("cloudformation:GetTemplate", stack(serving, region="ap-south-1")),
            "ImplicitlyDenied",
        ),
        "every stack listed": (("cloudformation:ListStacks", "*"), "ImplicitlyDenied"),
        "a change set": (("cloudformation:CreateChangeSet", stack(serving)), "ImplicitlyDenied"),
        # The lookup role reads the whole account (ReadOnlyAccess); the deploy role deploys.
        "the bootstrap lookup role": (("sts:AssumeRole", bootstrap_role("lookup-role")), "ImplicitlyDenied"),
        "the bootstrap deploy role": (("sts:AssumeRole", bootstrap_role("deploy-role")), "ImplicitlyDenied"),
        "prod's artifacts": (
            ("s3:GetObject", "arn:aws:s3:::tfhub-serving-prod-storage-b-1/artifacts/x"),
            "ImplicitlyDenied",
        ),
    }
    answers = decisions(ci_access("prod"), [call for call, _ in cases.values()])
    assert dict(zip(cases, answers, strict=True)) == {name: expected for name, (_, expected) in cases.items()}


@pytest.mark.emulated
def test_the_pinned_cli_diffs_prods_assembly_with_what_the_preview_role_may_do(ci_access, synthesized, tmp_path):
    """deliver.yml's `cdk diff --method template` of prod's assembly, run by the pinned CLI
    in prod's account with credentials allowed the preview role's actions alone (moto
    enforcing IAM): it compares both stacks, and every call it makes is one IAM grants
    the preview role on those stacks, but the lookup role, which IAM refuses it and the
    CLI does without."""
    synth = ci_access("prod")
    actions = [action for s in preview_statements(synth).values() for action in as_list(s["Action"])]
    assembly = synthesized("prod").outdir
    with prod_account(actions) as credentials:
        result = subprocess.run(
            [str(ROOT / "node_modules" / ".bin" / "cdk"), "diff", "--app", str(assembly)]
            + ["--method", "template", "--no-notices", "-vvv"],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **credentials},
            capture_output=True,
            text=True,
            timeout=300,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert all(f"Stack {name} (aws://{ACCOUNT}/{REGION})" in output for name in PROD_STACKS)
    assert "Number of stacks with differences: 2" in output
    calls = set()
    for service, operation, parameters, outcome in TRACED_CALL.findall(output):
        target = json.loads(parameters)
        calls.add((f"{service.lower()}:{operation}", target.get("StackName") or target.get("RoleArn", ""), outcome))
    lookup = bootstrap_role("lookup-role")
    assert calls == {
        ("sts:GetCallerIdentity", "", "OK"),  # needs no permission
        ("sts:AssumeRole", lookup, "AccessDenied"),
        *{(action, name, "OK") for action in actions for name in PROD_STACKS},
    }
    # IAM, on the stacks' real ARNs, decides as moto did.
    asked = [("sts:AssumeRole", lookup)] + [(action, stack(name)) for action in actions for name in PROD_STACKS]
    assert decisions(synth, asked) == ["ImplicitlyDenied"] + ["Allowed"] * (len(asked) - 1)
