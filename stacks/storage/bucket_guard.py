"""Who may write where in a stage bucket, enforced by the bucket policy itself.

IAM policies grant; this bucket policy denies, whatever any identity policy
of the account grants (an administrator's included, short of changing this
policy or the bucket's lifecycle rules, which CloudFormation would then show
as drift):

- `artifacts/promoted/` and `promotions/`: only the promotion role writes,
  and only objects that do not exist yet (S3 conditional writes,
  `s3:if-none-match`; "Enforce conditional writes on Amazon S3 buckets",
  S3 User Guide). Nobody overwrites or deletes a promoted copy or a record,
  the promotion role included: it writes only bytes it has checked
  (`delivery/artifact_copy.py`).
- `artifacts/packaging/`: only the packaging role writes (its own job
  folders, by its IAM policy); nobody else, the Model's role included.
- Deleting object versions there: only the bucket's auto-delete handler, on
  `cdk destroy` of a stage whose data is not retained.
- Replication into any of those prefixes: nobody. A replication rule of
  another bucket writes with `s3:ReplicateObject` and `s3:ReplicateDelete`
  ("Setting up permissions for live replication", S3 User Guide), not
  `s3:PutObject`, so it would pass the denies above.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from stacks.stage.names import PACKAGING_PREFIX
from stacks.storage.promotion_role import PROMOTED_PREFIX, RECORDS_PREFIX


def guard_writes(
    bucket: s3.IBucket,
    *,
    promotion_role: str,
    packaging_role: str | None,
    auto_delete_role: str | None,
) -> None:
    """Add the deny statements above to `bucket`'s policy (role ARNs as tokens)."""
    promoted, records = bucket.arn_for_objects(f"{PROMOTED_PREFIX}*"), bucket.arn_for_objects(f"{RECORDS_PREFIX}*")
    packaging = bucket.arn_for_objects(f"{PACKAGING_PREFIX}*")
    deleters = [auto_delete_role] if auto_delete_role else []
    for statement in (
        _deny(
            "WriteOnceCopiesAndRecords",
            ["s3:PutObject"],
            [promoted, records],
            {
                # PutObject and CompleteMultipartUpload must carry If-None-Match; the
                # multipart steps before (CreateMultipartUpload, UploadPart) cannot.
                "Null": {"s3:if-none-match": "true"},
                "Bool": {"s3:ObjectCreationOperation": "true"},
            },
        ),
        _deny_unless("OnlyPromotionsWriteCopiesAndRecords", ["s3:PutObject"], [promoted, records], [promotion_role]),
        # In a versioned bucket a delete leaves a delete marker, after which a
        # conditional write succeeds: deleting is how bytes would be swapped.
        _deny_unless("CopiesAndRecordsStay", ["s3:DeleteObject"], [promoted, records], deleters),
        _deny_unless("VersionsStay", ["s3:DeleteObjectVersion"], [promoted, records, packaging], deleters),
        _deny("NoReplicasOfGuardedKeys", ["s3:ReplicateObject", "s3:ReplicateDelete"], [promoted, records, packaging]),
        _deny_unless(
            "OnlyPackagingJobsWriteJobFolders",
            ["s3:PutObject", "s3:DeleteObject"],
            [packaging],
            ([packaging_role] if packaging_role else []) + deleters,
        ),
    ):
        bucket.add_to_resource_policy(statement)


def _deny(sid: str, actions: list[str], resources: list[str], conditions: dict | None = None) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=actions,
        resources=resources,
        conditions=conditions,
    )


def _deny_unless(sid: str, actions: list[str], resources: list[str], principals: Sequence[str]) -> iam.PolicyStatement:
    """Deny `actions` on `resources` to every principal but `principals` (none: to all)."""
    if not principals:
        return _deny(sid, actions, resources)
    return _deny(sid, actions, resources, {"ArnNotEquals": {"aws:PrincipalArn": list(principals)}})
