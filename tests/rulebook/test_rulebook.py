"""Each rule with its document; each catches a known-bad request and passes a good one."""

from __future__ import annotations

import re

import pytest

from stacks.rulebook import RULES
from stacks.rulebook import requests as api
from stacks.rulebook.limits import (
    ARM_FAMILIES,
    EBS_ONLY_FAMILIES,
    ENDPOINT_INSTANCE_TYPES,
    INSTANCE_STORE_FAMILIES,
    TRAINING_INSTANCE_TYPES,
    has_instance_store,
    instance_family,
    offered_instance_types,
    unoffered,
)
from stacks.rulebook.traffic import step_problem
from tests.rulebook.known_requests import CONFIG_ONLY, GOOD, KNOWN_BAD, TEMPLATE_ONLY


def test_every_rule_names_its_document_and_says_itself():
    for rule in RULES.values():
        assert rule.document and rule.says and rule.id
        assert "\n" not in rule.document + rule.says


def test_every_request_rule_catches_a_known_bad_request():
    assert set(KNOWN_BAD) | TEMPLATE_ONLY | CONFIG_ONLY == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(KNOWN_BAD))
def test_a_known_bad_request_breaks_its_rule(rule_id):
    operation, request, knows = KNOWN_BAD[rule_id]
    broken = {v.rule.id for v in api.check(operation, request, knows)}
    assert rule_id in broken


@pytest.mark.parametrize("operation, request_, knows", GOOD, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOOD)])
def test_a_request_sagemaker_takes_breaks_nothing(operation, request_, knows):
    assert api.check(operation, request_, knows) == []


@pytest.mark.parametrize(
    ("strategy", "instances", "sizes", "problem"),
    [
        ("canary", 1, range(2, 5), None),
        ("canary", 1, range(1, 5), "1 of 1 instance(s) is 100 %"),  # autoscaling's minimum counts
        ("canary", 2, range(2, 5), "2 of 2 instance(s) is 100 %"),
        ("canary", 0, (2,), "moves no traffic"),
        ("linear", 1, range(2, 11), None),  # 10 % at ten instances is the documented edge
        ("linear", 1, range(2, 12), "1 of 11 instance(s) is 9.09 %"),  # every size up to max counts
        ("linear", 1, (1,), "1 of 1 instance(s) is 100 %"),
    ],
)
def test_steps_are_their_documented_share_at_every_fleet_size(strategy, instances, sizes, problem):
    found = step_problem(strategy, instances, sizes)
    assert (found is None) if problem is None else problem in found


def test_instance_store_allow_list_comes_from_the_documents():
    for family in ("dl1", "p6-b200", "p6e-gb200", "p4d", "g4dn", "g5"):
        assert has_instance_store(f"ml.{family}.xlarge"), family
    for family in ("m5", "c5", "p3", "inf2", "t3"):
        assert not has_instance_store(f"ml.{family}.xlarge"), family


@pytest.mark.parametrize("shape", [ENDPOINT_INSTANCE_TYPES, TRAINING_INSTANCE_TYPES])
def test_every_family_sagemaker_offers_is_decided_once(shape):
    """A family botocore learns of fails here until it joins exactly one list."""
    offered = offered_instance_types(shape)
    families = {instance_family(instance_type) or instance_type for instance_type in offered}
    undecided = sorted(f for f in families if (f in INSTANCE_STORE_FAMILIES) == (f in EBS_ONLY_FAMILIES))
    assert undecided == [], "add each to INSTANCE_STORE_FAMILIES or EBS_ONLY_FAMILIES, with its document"


def test_the_arm_families_are_those_ec2s_naming_convention_marks():
    """EC2's "Instance type naming conventions": series, generation, then attributes, of
    which `g` is AWS Graviton; an option `gb...` is Grace Blackwell (P6e-GB200). A new
    Arm family in botocore's enums fails here until ARM_FAMILIES names it."""

    def arm_by_name(family: str) -> bool:
        named = re.fullmatch(r"([a-z]+)(\d+)([a-z]*)(?:-(.+))?", family)
        assert named, f"{family} does not follow the naming convention"
        _series, _generation, attributes, option = named.groups()
        return "g" in attributes or (option or "").startswith("gb")

    families = {
        instance_family(instance_type)
        for shape in (ENDPOINT_INSTANCE_TYPES, TRAINING_INSTANCE_TYPES)
        for instance_type in offered_instance_types(shape)
    }
    assert {f for f in families if arm_by_name(f)} == ARM_FAMILIES
    # x86 GPUs are not mistaken for Graviton by their leading g.
    assert not {"g4dn", "g5", "g6e", "p6-b200"} & ARM_FAMILIES


@pytest.mark.parametrize(
    ("instance_type", "shape", "problem"),
    [
        ("ml.m5.large", ENDPOINT_INSTANCE_TYPES, None),
        ("ml.g5.xlarge", TRAINING_INSTANCE_TYPES, None),
        ("ml.m5.huge", ENDPOINT_INSTANCE_TYPES, "ml.m5 is offered as large, xlarge, 2xlarge"),
        ("ml.c5n.xlarge", ENDPOINT_INSTANCE_TYPES, "ml.c5n is offered only for training jobs"),
        ("ml.inf2.xlarge", TRAINING_INSTANCE_TYPES, "ml.inf2 is offered only for real-time endpoints"),
        ("ml.zz9.large", TRAINING_INSTANCE_TYPES, "no ml.zz9 is offered"),
    ],
)
def test_an_instance_type_is_one_the_service_model_lists_for_its_purpose(instance_type, shape, problem):
    found = unoffered(instance_type, shape)
    assert (found is None) if problem is None else problem in found


def test_the_readme_states_every_rule():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for rule_id in RULES:
        assert f"| `{rule_id}` |" in readme, rule_id
