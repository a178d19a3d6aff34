"""The names a stage's parts find each other by, across processes: its two stacks,
its endpoint, and the exports the serving stack, `make promote` and CI read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageNames:
    project: str
    stage: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stage}"

    @property
    def storage_stack(self) -> str:
        return f"{self.prefix}-storage"

    @property
    def serving_stack(self) -> str:
        return f"{self.prefix}-serving"

    @property
    def endpoint(self) -> str:
        return self.prefix

    # Exports of the storage stack. Named on purpose: the serving stack's IAM findings
    # then name the export (e.g. `tfhub-serving-dev-bucket-arn/artifacts/...`), which lets
    # each be acknowledged precisely, and the storage stack cannot be deleted while a
    # serving stack imports them.
    @property
    def bucket_name_export(self) -> str:
        return f"{self.prefix}-bucket-name"

    @property
    def bucket_arn_export(self) -> str:
        return f"{self.prefix}-bucket-arn"

    @property
    def packaging_role_export(self) -> str:
        return f"{self.prefix}-packaging-role-arn"

    @property
    def promotion_role_export(self) -> str:
        return f"{self.prefix}-promotion-role-arn"
