"""Every combination of serving kind x artifact x deployment x autoscaling x data capture:
a valid one synthesizes (cdk-nag included) and obeys every SageMaker rule; an invalid
one fails synth in one line that names the rule, before any template exists."""

from __future__ import annotations

import copy
import itertools

import aws_cdk as cdk
import pytest

from stacks.compose import add_stage
from stacks.stage.schema import ConfigError
from tests.conftest import cdk_json_context

SERVING = {
    "serverless": {"serverless": {"memory_mb": 3072, "max_concurrency": 5}},
    "instances": {"instances": {"type": "ml.m5.large", "count": 2}},
    "instance-store": {"instances": {"type": "ml.g5.xlarge", "count": 2}},
}
ARTIFACTS = ("packaging", "pinned .tar.gz", "pinned prefix")
DEPLOYMENTS = {
    "none": None,
    "all at once": {"strategy": "all_at_once", "wait_minutes": 5},
    "canary": {"strategy": "canary", "step_instances": 1, "wait_minutes": 5},
    "linear": {"strategy": "linear", "step_instances": 1, "wait_minutes": 5},
}
ALARMS = {"emails": [], "max_model_latency_ms": 1000, "max_5xx_errors": 5}


def stage_settings(serving: str, artifact: str, deployment: str, autoscaling: bool, capture: bool) -> dict:
    dev = copy.deepcopy(cdk_json_context()["stages"]["dev"])
    dev["serving"] = copy.deepcopy(SERVING[serving])
    if autoscaling:
        # Under instances; a serverless endpoint has nowhere to put it.
        next(iter(dev["serving"].values()))["autoscaling"] = {"min": 2, "max": 12, "invocations_per_instance": 100}
    if artifact != "packaging":
        dev.pop("packaging")
        dev["pinned_artifact"] = "artifacts/use/4/model.tar.gz" if artifact == "pinned .tar.gz" else "artifacts/use/4/"
    if DEPLOYMENTS[deployment]:
        dev["deployment"] = DEPLOYMENTS[deployment]
        dev["alarms"] = ALARMS
    if capture:
        dev["data_capture"] = {"sampling_percent": 10}
    return dev


def breaks(serving: str, artifact: str, deployment: str, autoscaling: bool, capture: bool) -> str | None:
    """The documents' verdict, written out independently of the config code."""
    if serving == "serverless":
        if autoscaling:
            return "unknown key"  # serverless has no instances to scale
        if artifact == "pinned prefix":
            return "serverless-model-data"
        if deployment in ("canary", "linear"):
            return "serverless-traffic-shifting"
        if capture:
            return "serverless-features"
    elif deployment == "linear" and autoscaling:
        return "linear-step"  # one instance of 11 or 12 is under 10 %
    return None


COMBINATIONS = list(itertools.product(SERVING, ARTIFACTS, DEPLOYMENTS, (False, True), (False, True)))


def synth(settings: dict, tmp_path):
    context = copy.deepcopy(cdk_json_context())
    context["stages"]["dev"] = settings
    app = cdk.App(outdir=str(tmp_path), context=context)
    stage = add_stage(app, "dev", default_region="us-east-1")
    return stage, stage.rule_violations(app.synth())


@pytest.mark.parametrize(
    "serving, artifact, deployment, autoscaling, capture",
    COMBINATIONS,
    ids=[
        f"{s}|{a}|{d}|{'autoscaled' if sc else 'fixed'}|{'capture' if c else 'no capture'}"
        for s, a, d, sc, c in COMBINATIONS
    ],
)
def test_combination(serving, artifact, deployment, autoscaling, capture, tmp_path):
    settings = stage_settings(serving, artifact, deployment, autoscaling, capture)
    expected = breaks(serving, artifact, deployment, autoscaling, capture)
    if expected is None:
        stage, violations = synth(settings, tmp_path)
        assert violations == []
        model = stage.serving.serving.model
        data = cdk.Stack.of(model).resolve(model.primary_container)
        assert ("modelDataUrl" in data) == (serving == "serverless" or artifact == "pinned .tar.gz")
        return
    with pytest.raises(ConfigError) as caught:
        synth(settings, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and expected in message
    assert not list(tmp_path.glob("*.template.json"))
