"""The stage's promotion role: the one principal that writes promoted copies and records.

`make promote` assumes it for every write into the target stage's bucket:
the content-addressed copy under `artifacts/promoted/<digest>/` and the
record (and the assembly it deployed) under `promotions/`. The bucket policy
(`bucket_guard.py`) denies those writes to every other principal, and any write that could replace an
object. Who may assume it: the principals `promoters` names (CI's deploy
role, say), or, with none named, any principal of the stage's account whose
own IAM policy allows `sts:AssumeRole` on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.compliance.nag import acknowledge_wildcards

PROMOTED_PREFIX = "artifacts/promoted/"
RECORDS_PREFIX = "promotions/"


class PromotionRole(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, promoters: Sequence[str], stage: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=_trusted(promoters),
            description=f"make promote into stage {stage}: writes promoted copies and promotion records",
        )
        promoted = bucket.arn_for_objects(f"{PROMOTED_PREFIX}*")
        records = bucket.arn_for_objects(f"{RECORDS_PREFIX}*")
        self.policy = iam.Policy(
            self,
            "Permissions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadCopiesAndRecords", actions=["s3:GetObject"], resources=[promoted, records]
                ),
                iam.PolicyStatement(
                    sid="ListCopiesAndRecords",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{PROMOTED_PREFIX}*", f"{RECORDS_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    sid="WriteNewCopiesAndRecords",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[promoted, records],
                ),
            ],
        )
        acknowledge_wildcards(
            self.policy,
            {
                promoted: f"Promoted copies live under '{PROMOTED_PREFIX}<digest>/', named by a digest "
                "known only when a promotion runs.",
                records: f"Promotion records are numbered as promotions happen under '{RECORDS_PREFIX}'.",
            },
        )


def _trusted(promoters: Sequence[str]) -> iam.IPrincipal:
    if not promoters:
        return iam.AccountRootPrincipal()
    # Trust policies take no wildcards in a principal ARN: trust the promoters'
    # accounts and name the principals (patterns allowed) by condition.
    accounts = sorted({arn.split(":")[4] for arn in promoters})
    return iam.CompositePrincipal(
        *(
            iam.PrincipalWithConditions(
                iam.AccountPrincipal(account), {"ArnLike": {"aws:PrincipalArn": list(promoters)}}
            )
            for account in accounts
        )
    )
