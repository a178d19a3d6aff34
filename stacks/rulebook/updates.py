"""A stage's serving template checked as an update of what is deployed now.

Synth knows only the template; some rules depend on the endpoint as it is: an
update from instances to serverless, or a new instance type for a variant
whose scalable target is registered (blue/green refuses both). `make deploy`
and `make promote` ask the account (`delivery/preflight.py`) and check here
before the CLI runs.
"""

from __future__ import annotations

from stacks.rulebook import Violation
from stacks.rulebook import requests as api
from stacks.rulebook.templates import _Stage


class _Update(_Stage):
    """The serving template as an update of what is deployed now: the endpoint and
    its current config, and the variants registered for autoscaling, are the
    deployed ones (`deployed`, a `requests.Lookups` over the live account)."""

    def __init__(self, serving_template: dict, deployed: api.Lookups, account: str | None, region: str | None):
        super().__init__(serving_template, account, region)
        self.deployed = deployed

    def endpoint_config(self, name: str) -> dict | None:
        return super().endpoint_config(name) or self.deployed.endpoint_config(name)

    def endpoint(self, name: str) -> dict | None:
        return self.deployed.endpoint(name)

    def scaling(self, endpoint_name: str) -> dict[str, tuple[int, int]]:
        return self.deployed.scaling(endpoint_name)

    def update_violations(self, endpoint_name: str) -> list[Violation]:
        found = []
        for resource in self.of_type(self.serving, "AWS::SageMaker::Endpoint").values():
            request = {**self.text(resource["Properties"]), "EndpointName": endpoint_name}
            found += api.check("UpdateEndpoint", request, self)
        return found


def check_update(
    serving_template: dict,
    endpoint_name: str,
    deployed: api.Lookups,
    account: str | None = None,
    region: str | None = None,
) -> list[Violation]:
    """The rules a deploy of `serving_template` would break as an update of the
    endpoint deployed now (synth cannot know it: e.g. an autoscaled variant's
    instance type changed while its scalable target is registered)."""
    return _Update(serving_template, deployed, account, region).update_violations(endpoint_name)
