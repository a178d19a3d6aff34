"""The rehearsal's SageMaker: moto's control plane, with training jobs that really run.

A loopback HTTP server that the handlers, the ministack provisioners and the
project's tools reach through AWS_ENDPOINT_URL_SAGEMAKER. It forwards every
request to moto's server, except where moto falls short of SageMaker:

- CreateTrainingJob: moto marks a job Completed at once and runs nothing.
  Here the job runs as SageMaker would run it: /opt/ml laid out from the
  request, the channels downloaded from S3, the real SageMaker training toolkit
  fetching `sagemaker_submit_directory` from S3 and running `train.py`, its
  output lines sent to CloudWatch Logs (`/aws/sagemaker/TrainingJobs`,
  stream `<job>/algo-1-<time>`), `/opt/ml/model` uploaded per
  `OutputDataConfig.CompressionType` (GZIP: `<job>/output/model.tar.gz`;
  NONE: the files under `<job>/output/model/`), and the failure file as
  FailureReason. Describe and List report that state (InProgress, Completed,
  Failed, Stopped); StopTrainingJob, which moto lacks, stops the run.
- UpdateEndpoint, which moto lacks: the endpoint keeps its name and tags and
  now uses the new config.
- InvokeEndpoint (sagemaker-runtime, which reaches this server through
  AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME): moto answers with canned bodies; here
  the endpoint's own model answers (`serving.py`).

It is strict where moto is lenient: every request is checked against the
rulebook (`stacks/rulebook/requests.py`) first, with what SageMaker would know
at that moment (the models, configs and endpoints created so far, as they were
asked for, what is under an S3 prefix, and the capacity range moto's
Application Auto Scaling holds each variant to), and a request SageMaker would
refuse is refused here with SageMaker's ValidationException, naming the rule.
It stands in for SageMaker, so it enforces SageMaker's rules only: a project
rule (inferred from a document, not stated in it) is the stage config's to refuse.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from delivery.preflight import registered_variants
from fixtures.loopback import LoopbackServer, QuietHandler
from rehearsal.serving import Runtime
from rehearsal.training_jobs import Run, TrainingJobs, split_uri, stop
from stacks.rulebook import requests as rules


class SageMaker(LoopbackServer, TrainingJobs):
    """Start with `with SageMaker(...) as sagemaker:`; `url` is its endpoint."""

    def __init__(
        self,
        moto_url: str,
        clients: Callable[[str, str], Any],
        workdir: pathlib.Path,
        job_env: dict[str, str],
        strict: bool = True,
    ) -> None:
        """`clients(service, url)` makes a boto3 client of an emulator; `job_env` is
        the training container's whole environment (credentials, region, endpoints);
        `strict` checks each request against the rulebook before moto sees it."""
        self.moto = urlsplit(moto_url)
        self.moto_sagemaker = clients("sagemaker", moto_url)
        self.autoscaling = clients("application-autoscaling", moto_url)
        ministack = job_env["AWS_ENDPOINT_URL"]
        self.s3, self.logs = clients("s3", ministack), clients("logs", ministack)
        self.workdir, self.job_env, self.strict = workdir, job_env, strict
        # What callers asked for, by name: moto does not keep all of it
        # (DescribeModel drops EnableNetworkIsolation), SageMaker does.
        self.models: dict[str, dict] = {}
        self.configs: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        # How many requests of each operation the rulebook checked, and how
        # many invocations each endpoint answered.
        self.checked: dict[str, int] = {}
        self.invocations: dict[str, int] = {}
        self.runtime = Runtime(self.s3, workdir / "serving")
        self.runs: dict[str, Run] = {}
        # Each CreateTrainingJob request, by job name, as the caller sent it.
        self.requests: dict[str, dict] = {}
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    status, headers, answer = stand_in.handle(self.path, dict(self.headers), body)
                except Exception as error:  # the caller sees a service error, as from AWS
                    status, headers, answer = _error(500, "InternalFailure", f"{type(error).__name__}: {error}")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        super().__init__(Handler)

    def __exit__(self, *exc) -> None:
        for run in self.runs.values():
            stop(run)
        super().__exit__(*exc)

    # --- requests ----------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        if path.startswith("/endpoints/") and path.endswith("/invocations"):
            return self._invoke(path.split("/")[2], body)
        operation = headers.get("X-Amz-Target", "").rpartition(".")[2]
        request = json.loads(body) if body and operation else {}
        broken = []
        if self.strict and operation:
            self.checked[operation] = self.checked.get(operation, 0) + 1
            broken = [found for found in rules.check(operation, request, self) if not found.rule.project]
        if broken:
            return _error(400, "ValidationException", "; ".join(map(str, broken)))
        special = {
            "CreateTrainingJob": self._create_training_job,
            "DescribeTrainingJob": self._describe_training_job,
            "ListTrainingJobs": self._list_training_jobs,
            "StopTrainingJob": self._stop_training_job,
            "UpdateEndpoint": self._update_endpoint,
        }.get(operation)
        answer = special(path, headers, request) if special else self.forward(path, headers, body)
        if answer[0] == 200:
            self._remember(operation, request)
        return answer

    def _remember(self, operation: str, request: dict) -> None:
        kinds = {"Model": self.models, "EndpointConfig": self.configs, "Endpoint": self.endpoints}
        for kind, known in kinds.items():
            name = request.get(f"{kind}Name", "")
            if operation in (f"Create{kind}", f"Update{kind}"):
                known[name] = {**known.get(name, {}), **request}
            elif operation == f"Delete{kind}":
                known.pop(name, None)

    # --- what SageMaker knows, for the rulebook (`rules.Lookups`) -------------

    def model(self, name: str) -> dict | None:
        return self.models.get(name)

    def endpoint_config(self, name: str) -> dict | None:
        return self.configs.get(name)

    def endpoint(self, name: str) -> dict | None:
        return self.endpoints.get(name)

    def prefix_keys(self, uri: str) -> list[str] | None:
        bucket, prefix = split_uri(uri)
        return [
            obj["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]

    def scaling(self, endpoint_name: str) -> dict[str, tuple[int, int]]:
        return registered_variants(self.autoscaling, endpoint_name)

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(self.moto.hostname or "127.0.0.1", self.moto.port, timeout=60)
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")},
            )
            response = connection.getresponse()
            answer = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "x-amzn-requestid")}
            return response.status, kept, answer
        finally:
            connection.close()

    def _create_training_job(self, path, headers, request):
        status, kept, answer = self.forward(path, headers, json.dumps(request).encode())
        if status == 200:
            self.requests[request["TrainingJobName"]] = request
            run = self.runs[request["TrainingJobName"]] = Run(request["TrainingJobName"])
            threading.Thread(target=self._run_job, args=(run, request), daemon=True).start()
        return status, kept, answer

    def _describe_training_job(self, path, headers, request):
        status, kept, answer = self.forward(path, headers, json.dumps(request).encode())
        run = self.runs.get(request.get("TrainingJobName", ""))
        if status == 200 and run:
            answer = json.dumps(self._as_sagemaker_reports(json.loads(answer), run)).encode()
        return status, kept, answer

    def _list_training_jobs(self, path, headers, request):
        wanted = request.pop("StatusEquals", None)
        status, kept, answer = self.forward(path, headers, json.dumps(request).encode())
        if status != 200:
            return status, kept, answer
        listed = json.loads(answer)
        summaries = []
        for summary in listed["TrainingJobSummaries"]:
            run = self.runs.get(summary["TrainingJobName"])
            if run:
                summary["TrainingJobStatus"] = run.status
            if wanted is None or summary["TrainingJobStatus"] == wanted:
                summaries.append(summary)
        listed["TrainingJobSummaries"] = summaries
        return status, kept, json.dumps(listed).encode()

    def _stop_training_job(self, path, headers, request):
        run = self.runs.get(request.get("TrainingJobName", ""))
        if run is None:
            return _error(400, "ValidationException", f"Requested resource not found: {request}")
        if run.status == "InProgress":
            run.status, run.secondary = "Stopping", "Stopping"
            stop(run)
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, b"{}"

    def _invoke(self, endpoint_name: str, body: bytes) -> tuple[int, dict, bytes]:
        self.invocations[endpoint_name] = self.invocations.get(endpoint_name, 0) + 1
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return _error(400, "ValidationError", f"Endpoint {endpoint_name} not found.")
        (variant,) = self.configs[endpoint["EndpointConfigName"]]["ProductionVariants"]
        try:
            answer = self.runtime.predict(self.models[variant["ModelName"]], json.loads(body))
        except Exception as error:  # TF Serving answers a bad request with its own message
            return _error(400, "ModelError", f"Received client error (400) from primary: {error}")
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _update_endpoint(self, path, headers, request):
        moto, name = self.moto_sagemaker, request["EndpointName"]
        current = moto.describe_endpoint(EndpointName=name)
        moto.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])
        tags = moto.list_tags(ResourceArn=current["EndpointArn"]).get("Tags", [])
        moto.delete_endpoint(EndpointName=name)
        moto.create_endpoint(EndpointName=name, EndpointConfigName=request["EndpointConfigName"], Tags=tags)
        return (
            200,
            {"Content-Type": "application/x-amz-json-1.1"},
            json.dumps({"EndpointArn": current["EndpointArn"]}).encode(),
        )

    # --- running a job as SageMaker would ------------------------------------


def _error(status: int, code: str, message: str) -> tuple[int, dict, bytes]:
    return (
        status,
        {"Content-Type": "application/x-amz-json-1.1"},
        json.dumps({"__type": code, "message": message}).encode(),
    )
