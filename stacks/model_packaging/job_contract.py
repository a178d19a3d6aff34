"""The packaging job's calling contract as the packaging handler takes it.

The job owns its program and hyperparameter names (`packaging_job/packager/contract.py`,
shipped with it); the handler ships apart, so the construct sets this in its
environment, and the rulebook and the rehearsal build the handler's request with it.
"""

from __future__ import annotations

from packaging_job.packager import contract
from stacks.model_packaging.handler_asset.packaging_handler.job_request import JobContract


def job_contract() -> JobContract:
    return JobContract(
        program=contract.PROGRAM,
        hub_handle=contract.HUB_HANDLE,
        model_name=contract.MODEL_NAME,
        model_version=contract.MODEL_VERSION,
        signature=contract.SIGNATURE,
        sample_input=contract.SAMPLE_INPUT,
        verify_load=contract.VERIFY_LOAD,
        serving_tf_version=contract.SERVING_TF_VERSION,
        hub_sha256=contract.HUB_SHA256,
        limits=dict(contract.LIMITS),
    )
