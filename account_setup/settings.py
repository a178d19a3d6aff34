"""The account setup's settings: one stage's account, the repository CI runs from, and
the accounts of the stages it promotes from and to, validated before any construct.

The stage itself (project, account, region, endpoint, packaging) is cdk.json's,
validated by `stacks/stage/config.py` exactly as the app's. The rest is CDK context:

| key | meaning |
|---|---|
| `stage` | required: the stage whose account this sets up, one of cdk.json's stages |
| `github_repo` | required: `OWNER/REPO`, as GitHub spells it (the OIDC subject is case-sensitive) |
| `source_account` | the account of the stage this one promotes from, when cdk.json leaves it null |
| `next_account` | the account of the stage that promotes from this one, when cdk.json leaves it null |
| `oidc_provider_arn` | optional: use the account's existing GitHub provider (IAM holds one per URL) |
| `bootstrap_qualifier` | optional: the `cdk bootstrap --qualifier` of the account (default `hnb659fds`) |

A bad value is a `ConfigError` whose one line names the key and what is allowed.
Role names are fixed here, so the workflow's variables are predictable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stacks.stage.config import load_stage_config
from stacks.stage.schema import ConfigError, StageConfig

# The promotion chain of .github/workflows/deliver.yml: each stage promotes from the one before.
PROMOTES_TO = {"dev": "staging", "staging": "prod"}
PROMOTION_CHAIN = " -> ".join(dict.fromkeys(stage for pair in PROMOTES_TO.items() for stage in pair))
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# The audience aws-actions/configure-aws-credentials asks GitHub's token for.
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
# The stage whose deploy waits for reviewers (deliver.yml's `prod` environment). What
# they see first, the `cdk diff` of the assembly it would deploy, is computed in the
# environment `<stage>-preview` (no reviewers), whose tokens only the preview role trusts.
REVIEWED_STAGE = "prod"
# The CDK's default; `cdk bootstrap --qualifier` allows 1-10 of these characters.
DEFAULT_QUALIFIER = "hnb659fds"
_QUALIFIER = re.compile(r"^[A-Za-z0-9_-]{1,10}$")
# GitHub: an owner of up to 39 letters, digits and hyphens (not first); a repository of
# letters, digits, '.', '_' and '-'.
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_PROVIDER_ARN = re.compile(rf"^arn:aws[a-z-]*:iam::(\d{{12}}):oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$")
_IAM_NAME_MAX = 64


def deploy_role_name(project: str, stage: str) -> str:
    """The role the stage's GitHub environment deploys with (AWS_DEPLOY_ROLE_ARN)."""
    return f"{project}-{stage}-github-deploy"


def preview_role_name(project: str, stage: str) -> str:
    """The role the stage's preview environment reads its deployed templates with (AWS_PREVIEW_ROLE_ARN)."""
    return f"{project}-{stage}-github-preview"


def read_role_name(project: str, stage: str) -> str:
    """The role in the stage's account that the next stage reads its artifact with
    (the next stage's SOURCE_READ_ROLE_ARN)."""
    return f"{project}-{stage}-source-read"


@dataclass(frozen=True)
class Neighbour:
    """A stage next to this one in the promotion chain, and its account."""

    stage: str
    account: str


@dataclass(frozen=True)
class AccessSettings:
    config: StageConfig
    github_repo: str
    # The stage this one promotes from (its read role is assumed), and the one that
    # promotes from this one (it may assume this stage's read role).
    source: Neighbour | None
    reader: Neighbour | None
    oidc_provider_arn: str | None
    bootstrap_qualifier: str

    @property
    def stack_name(self) -> str:
        return f"{self.config.project}-{self.config.stage}-ci-access"

    @property
    def oidc_subject(self) -> str:
        """GitHub's `sub` claim for a job of the stage's environment (its default format)."""
        return f"repo:{self.github_repo}:environment:{self.config.stage}"

    @property
    def preview_environment(self) -> str | None:
        """The GitHub environment that shows the stage's reviewers a `cdk diff`; None where
        no reviewer waits."""
        return f"{self.config.stage}-preview" if self.config.stage == REVIEWED_STAGE else None

    @property
    def preview_oidc_subject(self) -> str | None:
        """GitHub's `sub` claim for a job of the preview environment."""
        return f"repo:{self.github_repo}:environment:{self.preview_environment}" if self.preview_environment else None

    @property
    def deploy_role_name(self) -> str:
        return deploy_role_name(self.config.project, self.config.stage)

    @property
    def read_role_name(self) -> str:
        return read_role_name(self.config.project, self.config.stage)

    @property
    def preview_role_name(self) -> str:
        return preview_role_name(self.config.project, self.config.stage)


def load_access_settings(
    context: Mapping[str, Any], *, default_account: str | None = None, default_region: str | None = None
) -> AccessSettings:
    """Validate `context` (cdk.json's plus `-c` values) for the stage it names.

    `default_account` and `default_region` are dev's fallbacks, as for the app.
    """
    stages = context.get("stages")
    declared = sorted(stages) if isinstance(stages, Mapping) else []
    stage = context.get("stage")
    if not isinstance(stage, str) or not stage:
        raise ConfigError(f"stage: missing; pass -c stage=NAME, one of: {', '.join(declared)}")
    config = load_stage_config(context, stage, default_account=default_account, default_region=default_region)
    names = [deploy_role_name(config.project, stage), read_role_name(config.project, stage)]
    if stage == REVIEWED_STAGE:
        names.append(preview_role_name(config.project, stage))
    for name in names:
        if len(name) > _IAM_NAME_MAX:
            raise ConfigError(
                f"stage: {stage!r} makes role name {name!r}, longer than IAM's {_IAM_NAME_MAX} characters; "
                "shorten project or the stage's name"
            )
    github_repo = _github_repo(context.get("github_repo"))
    sources = [before for before, after in PROMOTES_TO.items() if after == stage and before in declared]
    reader = PROMOTES_TO.get(stage) if PROMOTES_TO.get(stage) in declared else None
    return AccessSettings(
        config=config,
        github_repo=github_repo,
        source=_neighbour(context, "source_account", sources[0] if sources else None, stage),
        reader=_neighbour(context, "next_account", reader, stage),
        oidc_provider_arn=_provider_arn(context.get("oidc_provider_arn"), config.account),
        bootstrap_qualifier=_qualifier(context.get("bootstrap_qualifier", DEFAULT_QUALIFIER)),
    )


def _github_repo(value: Any) -> str:
    if value is None:
        raise ConfigError("github_repo: missing; pass -c github_repo=OWNER/REPO, the repository CI runs in")
    if not isinstance(value, str) or not _GITHUB_REPO.match(value):
        raise ConfigError(
            f"github_repo: {value!r} is not allowed; expected OWNER/REPO exactly as GitHub spells it "
            "(letters, digits, '-' in OWNER; letters, digits, '.', '_', '-' in REPO)"
        )
    return value


def _neighbour(context: Mapping[str, Any], key: str, stage: str | None, this_stage: str) -> Neighbour | None:
    """The neighbour's account: cdk.json's `stages.<stage>.account`, or `key` where that is null.

    No neighbour (`stage` None) takes no `key`: a value there would be silently unused.
    """
    relation = "promotes from" if key == "source_account" else "is promoted to"
    if stage is None:
        if key in context:
            raise ConfigError(f"{key}: not allowed; stage {this_stage} {relation} no stage ({PROMOTION_CHAIN})")
        return None
    declared = context["stages"][stage].get("account") if isinstance(context["stages"][stage], Mapping) else None
    if declared is not None and (not isinstance(declared, str) or not _ACCOUNT.match(declared)):
        raise ConfigError(f"stages.{stage}.account: {declared!r} is not allowed; expected a 12-digit account id")
    given = context.get(key)
    if given is not None and (not isinstance(given, str) or not _ACCOUNT.match(given)):
        raise ConfigError(f"{key}: {given!r} is not allowed; expected the 12-digit account id of stage {stage}")
    if declared and given and declared != given:
        raise ConfigError(
            f"{key}: {given!r} is not allowed; cdk.json's stages.{stage}.account says {declared!r} "
            f"(drop -c {key} or correct cdk.json)"
        )
    account = declared or given
    if account is None:
        raise ConfigError(
            f"{key}: missing; stage {this_stage} {relation} {stage}, whose account cdk.json leaves null: "
            f"pass -c {key}=<12-digit account id>"
        )
    return Neighbour(stage, account)


def _provider_arn(value: Any, account: str | None) -> str | None:
    if value is None:
        return None
    match = _PROVIDER_ARN.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(
            f"oidc_provider_arn: {value!r} is not allowed; expected "
            f"arn:aws:iam::ACCOUNT:oidc-provider/{GITHUB_OIDC_HOST}"
        )
    if account and match.group(1) != account:
        raise ConfigError(
            f"oidc_provider_arn: {value!r} is not allowed; it belongs to account {match.group(1)}, "
            f"the stage's account is {account}"
        )
    return value


def _qualifier(value: Any) -> str:
    if not isinstance(value, str) or not _QUALIFIER.match(value):
        raise ConfigError(
            f"bootstrap_qualifier: {value!r} is not allowed; expected the account's `cdk bootstrap "
            f"--qualifier`: 1-10 letters, digits, '_' or '-' (default {DEFAULT_QUALIFIER})"
        )
    return value
