"""Stage configuration: the one validated, frozen object each stage is built from.

`cdk.json` context holds the raw settings (`project`, `stages.<name>`). This
module turns one stage's raw settings into a `StageConfig` or raises a
`ConfigError` whose single line names the key, the bad value and what is
allowed. Nothing here reads the environment or calls AWS: `app.py` passes the
fallback account and region in.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from stacks.rulebook import limits
from stacks.stage import images
from stacks.stage.fields import choice, mapping, no_unknown_keys, string
from stacks.stage.packaging_settings import (
    read_model,
    read_packaging,
)
from stacks.stage.region import environment_region
from stacks.stage.schema import (
    ARTIFACTS_PREFIX,
    REMOVAL_POLICIES,
    ConfigError,
    PackagingConfig,
    ServerlessServing,
    StageConfig,
    breaks_rule,
)
from stacks.stage.serving_settings import read_production, read_serving

# SageMaker endpoint names: alphanumerics and hyphens, 63 characters at most.
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](?:-*[a-zA-Z0-9])*$")
# The project also starts stack names, which must begin with a letter.
_PROJECT = re.compile(r"^[a-zA-Z](?:-*[a-zA-Z0-9])*$")
_ENDPOINT_NAME_MAX = 63
# ASCII digits only: \d also takes other scripts' digits.
_ACCOUNT = re.compile(r"^[0-9]{12}$")
# An IAM role or user that may assume the promotion role (ArnLike patterns allowed).
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9_+=,.@/*-]+$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
# A stage names stacks, exports, GitHub environments and the endpoint.
_STAGE = re.compile(r"^[a-z](?:-?[a-z0-9]){0,19}$")
_BUILT_IN_TAGS = ("project", "stage")
_USER_TAGS_MAX = 50 - len(_BUILT_IN_TAGS)
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")
_ARTIFACT_SUFFIXES = (".tar.gz", "/")


def load_stage_config(
    context: Mapping[str, Any],
    stage: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
    artifact: str | None = None,
    artifact_digest: str | None = None,
) -> StageConfig:
    """Validate `context` (cdk.json's context) for `stage`.

    `artifact` (`cdk deploy -c artifact=KEY -c artifact_digest=SHA256`, as
    promotions deploy) serves that key of the stage bucket instead of what the
    stage's config says, and reports its digest.

    Only the dev stage may take its account and region from the fallbacks
    (`CDK_DEFAULT_ACCOUNT` and the region rule of `stacks/stage/region.py`, applied by
    app.py): staging and prod must name theirs so a promotion never lands in the
    wrong account.
    """
    project = string(context, "project", "project")
    if not _PROJECT.fullmatch(project):
        raise ConfigError(
            f"project: {project!r} is not allowed; start with a letter, then letters, "
            "digits and hyphens (no trailing hyphen)"
        )
    stages = context.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("stages: missing; declare at least one stage in cdk.json context")
    for name in stages:
        if not isinstance(name, str) or not _STAGE.fullmatch(name):
            raise ConfigError(
                f"stages: stage name {name!r} is not allowed; start with a lowercase letter, then lowercase "
                "letters, digits and single hyphens, at most 20 characters (it names stacks, exports, "
                "GitHub environments and the endpoint)"
            )
    if stage not in stages:
        raise ConfigError(f"stage: {stage!r} is not declared; allowed: {', '.join(sorted(stages))}")
    endpoint_name = f"{project}-{stage}"
    if len(endpoint_name) > _ENDPOINT_NAME_MAX or not _ENDPOINT_NAME.fullmatch(endpoint_name):
        raise ConfigError(
            f"stage: {stage!r} makes endpoint name {endpoint_name!r}, which is not a valid "
            f"SageMaker endpoint name (letters, digits, hyphens, {_ENDPOINT_NAME_MAX} "
            "characters at most)"
        )

    raw = mapping(stages, stage, f"stages.{stage}")
    where = f"stages.{stage}"
    packages = "packaging" in raw
    if artifact is not None:
        raw = {key: value for key, value in raw.items() if key != "packaging"}
        raw["pinned_artifact"] = artifact
    no_unknown_keys(
        raw,
        where,
        {
            "account",
            "region",
            "model",
            "serving",
            "packaging",
            "pinned_artifact",
            "removal_policy",
            "tags",
            "deployment",
            "alarms",
            "data_capture",
            "cost_guard",
            "promoters",
        },
    )
    if ("packaging" in raw) == ("pinned_artifact" in raw):
        raise ConfigError(
            f"{where}: set exactly one of 'packaging' (run the packaging job on deploy) or "
            "'pinned_artifact' (serve an artifact already in the stage bucket)"
        )
    may_fall_back = stage == "dev"
    account = _account(raw, where, default_account, may_fall_back)
    region = _region(raw, where, default_region, may_fall_back)
    model = read_model(mapping(raw, "model", f"{where}.model"), f"{where}.model")
    serving = read_serving(mapping(raw, "serving", f"{where}.serving"), f"{where}.serving")
    serverless = isinstance(serving, ServerlessServing)
    if serverless and region not in limits.SERVERLESS_REGIONS:
        raise breaks_rule(
            "serverless-regions",
            f"{where}.region",
            region,
            f"available in {', '.join(sorted(limits.SERVERLESS_REGIONS))}",
        )
    pinned = None
    if "pinned_artifact" in raw:
        key = "artifact (-c artifact=...)" if artifact is not None else f"{where}.pinned_artifact"
        pinned = _pinned_artifact(raw["pinned_artifact"], key)
        if serverless and pinned.endswith("/"):
            raise breaks_rule("serverless-model-data", key, pinned, "stage serves serverless")
    return StageConfig(
        project=project,
        stage=stage,
        account=account,
        region=region,
        model=model,
        serving=serving,
        packaging=_in_region(read_packaging(raw["packaging"], f"{where}.packaging"), region, where)
        if "packaging" in raw
        else None,
        pinned_artifact_key=pinned,
        pinned_artifact_digest=_digest(artifact_digest, artifact),
        retain_data=choice(raw, "removal_policy", where, REMOVAL_POLICIES) == "retain",
        tags=_tags(raw.get("tags", {}), f"{where}.tags"),
        promoters=_promoters(raw.get("promoters", []), f"{where}.promoters"),
        **read_production(raw, where, serving, packages),
    )


def read_context(cdk_json: pathlib.Path) -> Mapping[str, Any]:
    """cdk.json's `context`, or a one-line ConfigError saying what is wrong with the file."""
    try:
        document = json.loads(pathlib.Path(cdk_json).read_text())
    except OSError as error:
        raise ConfigError(f"{cdk_json}: cannot be read ({error.strerror})") from error
    except ValueError as error:
        raise ConfigError(f"{cdk_json}: not valid JSON ({error})") from error
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, Mapping):
        raise ConfigError(f"{cdk_json}: no 'context' object; the stages live under context.stages")
    return context


def stage_names(cdk_json: pathlib.Path) -> list[str]:
    """The stages cdk.json declares, in its order."""
    stages = read_context(cdk_json).get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("stages: missing; declare at least one stage in cdk.json context")
    return list(stages)


def load_from_cdk_json(cdk_json: pathlib.Path, stage: str, environ: Mapping[str, str]) -> StageConfig:
    """The stage's config for the command-line tools, its region by the region rule."""
    return load_stage_config(read_context(cdk_json), stage, default_region=environment_region(environ))


def _account(raw: Mapping[str, Any], where: str, fallback: str | None, may_fall_back: bool) -> str | None:
    value = raw.get("account")
    if value is None and may_fall_back:
        if fallback is None:
            # dev with no account anywhere synthesizes an account-agnostic template.
            return None
        value = fallback
    if value is None:
        raise ConfigError(f"{where}.account: missing; set the 12-digit AWS account id")
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise ConfigError(f"{where}.account: {value!r} is not allowed; expected a 12-digit account id")
    return value


def _region(raw: Mapping[str, Any], where: str, fallback: str | None, may_fall_back: bool) -> str:
    value = raw.get("region")
    if value is None:
        value = fallback if may_fall_back else None
        if value is None:
            raise ConfigError(f"{where}.region: missing; set it in cdk.json")
    allowed = images.supported_regions()
    if value not in allowed:
        raise ConfigError(
            f"{where}.region: {value!r} is not allowed; the TF Serving image "
            f"{images.SERVING_TF_VERSION} exists in: {', '.join(allowed)}"
        )
    return value


def _promoters(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _PRINCIPAL_ARN.fullmatch(v) for v in value):
        raise ConfigError(
            f"{key}: {value!r} is not allowed; expected a list of IAM role or user ARNs "
            "(arn:aws:iam::ACCOUNT:role/NAME), the principals that run promotions to this stage"
        )
    return tuple(value)


def _in_region(packaging: PackagingConfig, region: str, where: str) -> PackagingConfig:
    """A KMS key encrypts volumes only in its own region."""
    key_arn = packaging.volume_kms_key_arn
    if key_arn and key_arn.split(":")[3] != region:
        raise ConfigError(
            f"{where}.packaging.volume_kms_key_arn: {key_arn!r} is not allowed; the key is in "
            f"{key_arn.split(':')[3]}, the stage in {region}: use a key of {region}"
        )
    return packaging


def _digest(digest: str | None, artifact: str | None) -> str | None:
    if digest is None:
        return None
    if artifact is None or not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(
            f"artifact_digest: {digest!r} is not allowed; a sha256 tree digest (64 hex "
            "characters), given together with -c artifact=KEY"
        )
    return digest


def _pinned_artifact(value: Any, key: str) -> str:
    artifact = value if isinstance(value, str) else ""
    if not artifact.startswith(ARTIFACTS_PREFIX) or not artifact.endswith(_ARTIFACT_SUFFIXES):
        raise ConfigError(
            f"{key}: {value!r} is not allowed; expected a key in the stage "
            f"bucket under '{ARTIFACTS_PREFIX}' ending in '.tar.gz' (compressed) or '/' "
            "(uncompressed prefix)"
        )
    return artifact


def _tags(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object of string to string")
    if len(raw) > _USER_TAGS_MAX:
        raise ConfigError(
            f"{where}: {len(raw)} tags are not allowed; at most {_USER_TAGS_MAX} (AWS allows 50 per resource, "
            "and every resource also carries 'project' and 'stage')"
        )
    for key, value in raw.items():
        if key in _BUILT_IN_TAGS:
            raise ConfigError(f"{where}: key {key!r} is not allowed; the project sets it on every resource")
        if not _TAG_KEY.fullmatch(key) or key.lower().startswith("aws:"):
            raise ConfigError(
                f"{where}: key {key!r} is not allowed; 1-128 letters, digits, spaces or "
                "_ . : / = + - @, not starting with 'aws:'"
            )
        if not isinstance(value, str) or not _TAG_VALUE.fullmatch(value):
            raise ConfigError(
                f"{where}.{key}: {value!r} is not allowed; a string of up to 256 letters, "
                "digits, spaces or _ . : / = + - @"
            )
    return tuple(sorted(raw.items()))
