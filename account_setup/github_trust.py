"""How the CI roles trust GitHub: a token of one environment of one repository, by the account's OIDC provider."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from account_setup.settings import GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST


def github_environment(provider_arn: str, subject: str) -> iam.WebIdentityPrincipal:
    """A GitHub Actions job whose token's audience is STS and whose subject is exactly `subject`
    (`repo:OWNER/REPO:environment:NAME`: GitHub's default subject for a job of an environment)."""
    return iam.WebIdentityPrincipal(
        provider_arn,
        {
            "StringEquals": {
                f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                f"{GITHUB_OIDC_HOST}:sub": subject,
            },
        },
    )
