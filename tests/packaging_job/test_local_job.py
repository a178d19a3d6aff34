"""`make local`, as the README writes it: quiet progress, the job's own failure line, options, OUT=."""

from __future__ import annotations

import json
import os
import re
import subprocess

import boto3
import pytest

from tests.conftest import ROOT, moto_server
from tools.local_job import aws_environment, job_handle
from tools.toolkit import failure_message, stream_toolkit, write_layout

# Whatever could give the run credentials other than what a test sets.
_AWS_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def make_local(*variables: str, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "local", *variables],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in unset}, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_demo_model_packages_quietly_and_is_not_kept(tmp_path):
    result = make_local(AWS_PROFILE="gone", TMPDIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "  Hashing files" in lines and any(line.startswith("  Packaged demo/1: ") for line in lines)
    assert any(line.startswith("  known: shape [2], first values [1, 1]") for line in lines)
    # Neither the toolkit's nor TensorFlow's chatter, and nothing left behind.
    assert "sagemaker-training-toolkit" not in result.stdout + result.stderr
    assert "tensorflow" not in result.stderr.lower()
    assert lines[-1] == "Not kept (OUT=folder keeps the packaged model)."
    assert list(tmp_path.iterdir()) == []


def test_verbose_shows_the_toolkits_and_tensorflows_own_output(tmp_path):
    result = make_local("VERBOSE=1", unset=("TF_CPP_MIN_LOG_LEVEL",), TMPDIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    # The job's own run, as the toolkit reports it (this process loads TensorFlow too, later).
    job = result.stdout.partition("Invoking user script")[2].partition("Reporting training SUCCESS")[0]
    # TensorFlow's C++ log lines: "<date> <time>: I tensorflow/core/...cc:153] ...".
    assert re.search(r"^\S+ \S+: [IWE] \S+\.cc:\d+\] ", job, re.M), result.stdout[-3000:]


def test_a_numeric_signature_with_its_own_sample_is_kept_in_out(tmp_path):
    out = tmp_path / "kept"
    result = make_local("MODEL_NAME=numbers", "SIGNATURE=scale", "SAMPLE=[[1, 2]]", f"OUT={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  scaled: shape [1, 2], first values [3.0, 6.0]" in result.stdout.splitlines()
    assert (out / "numbers" / "1" / "saved_model.pb").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["signature"], manifest["sample_output_shapes"]) == ("scale", {"scaled": [1, 2]})
    assert result.stdout.splitlines()[-1] == f"Kept in {out}"


def test_a_failure_ends_with_the_jobs_own_message():
    result = make_local("HANDLE=/nowhere/model")
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert line == (
        "The packaging job failed: Local handle '/nowhere/model' does not exist. "
        "(VERBOSE=1 shows the toolkit's and TensorFlow's output)"
    )


# Credentials checked before the toolkit starts: tools.cli's one line, not the toolkit's traceback.
@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({}, "No AWS credentials found: set AWS_PROFILE"),
        ({"AWS_PROFILE": "gone"}, "AWS profile 'gone' (from AWS_PROFILE or AWS_DEFAULT_PROFILE) is not in"),
    ],
    ids=["no-credentials", "missing-profile"],
)
def test_an_s3_handle_without_credentials_is_one_line(tmp_path, profile, expected):
    result = make_local(
        "HANDLE=s3://bucket/model.tar.gz",
        unset=_AWS_CREDENTIAL_VARIABLES,
        HOME=str(tmp_path),
        AWS_EC2_METADATA_DISABLED="true",
        **profile,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "Running the packaging job" not in result.stdout
    line, made = result.stderr.splitlines()
    assert line.startswith(expected)
    assert made.endswith("Error 1")  # make reporting the tool's own exit code


@pytest.mark.parametrize(
    ("handle", "expected"),
    [
        ("s3:/x", "Hub handle 's3:/x' is not an S3 URI the job can read: write s3://bucket/key"),
        # An S3 handle in any case is one: here, one without credentials.
        ("S3://bucket/model.tar.gz", "No AWS credentials found: set AWS_PROFILE"),
    ],
)
def test_a_mistyped_s3_handle_is_one_line_before_the_job_starts(tmp_path, handle, expected):
    result = make_local(
        f"HANDLE={handle}", unset=_AWS_CREDENTIAL_VARIABLES, HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert "Running the packaging job" not in result.stdout
    line, made = result.stderr.splitlines()
    assert line.startswith(expected) and made.endswith("Error 1")


def test_an_s3_handle_is_read_with_the_profile_the_readme_names(tmp_path, text_archive):
    # AWS_PROFILE before AWS_DEFAULT_PROFILE, as the CDK CLI and the delivery tools take
    # them; botocore alone would take the missing AWS_DEFAULT_PROFILE and fail.
    with moto_server() as url:
        s3 = boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="text.tar.gz", Body=text_archive)
        config = tmp_path / "config"
        config.write_text("[profile chosen]\naws_access_key_id = k\naws_secret_access_key = s\nregion = eu-west-2\n")
        result = make_local(
            "HANDLE=s3://models/text.tar.gz",
            "MODEL_NAME=text",
            unset=_AWS_CREDENTIAL_VARIABLES,
            HOME=str(tmp_path),
            AWS_CONFIG_FILE=str(config),
            AWS_PROFILE="chosen",
            AWS_DEFAULT_PROFILE="gone",
            AWS_ENDPOINT_URL=url,
            AWS_EC2_METADATA_DISABLED="true",
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("  Packaged text/1: ") for line in result.stdout.splitlines())


def test_a_relative_local_handle_is_the_callers_path(tmp_path, text_model):
    # As a user types it from the project folder; the job itself runs from the toolkit's copy of its code.
    relative = os.path.relpath(text_model, ROOT)
    result = make_local(f"HANDLE={relative}", "MODEL_NAME=text", TMPDIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("  Packaged text/1: ") for line in result.stdout.splitlines())


def test_a_local_handle_becomes_absolute_and_any_other_stays_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert job_handle("model") == job_handle(" file:model ") == str(tmp_path / "model")
    assert job_handle("file:///srv/model") == "/srv/model"
    for handle in ("", "s3://bucket/m.tar.gz", "https://tfhub.dev/google/m/1", "gs://bucket/m"):
        assert job_handle(handle) == handle


@pytest.mark.parametrize(
    ("environ", "profile", "region"),
    [
        ({"AWS_PROFILE": "a", "AWS_DEFAULT_PROFILE": "b", "AWS_DEFAULT_REGION": "eu-west-1"}, "a", "eu-west-1"),
        ({"AWS_DEFAULT_PROFILE": "b", "AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-1"}, "b", "eu-west-2"),
        ({}, None, "us-east-1"),
    ],
)
def test_the_job_gets_one_profile_and_the_region_rules_region(environ, profile, region):
    variables = aws_environment(environ)
    assert (variables.get("AWS_PROFILE"), variables.get("AWS_DEFAULT_PROFILE")) == (profile, profile)
    assert variables["AWS_REGION"] == variables["AWS_DEFAULT_REGION"] == region


def test_a_sample_that_is_not_json_is_refused_before_anything_runs():
    result = make_local("SAMPLE=[hello")
    assert result.returncode != 0
    assert "SAMPLE is not JSON" in result.stderr and "Running the packaging job" not in result.stdout


def test_an_error_the_job_does_not_handle_still_fails_the_toolkit_run(tmp_path):
    base = tmp_path / "opt-ml"
    # train.py's own argument parsing rejects this before packaging starts.
    write_layout(base, {"hub-handle": "/x", "model-name": "m", "model-version": "one"})
    log = tmp_path / "job.log"
    assert stream_toolkit(base, log, lambda line: None) != 0
    failure = (base / "output" / "failure").read_text()
    assert failure.startswith("ExecuteUserScriptError:") and "ExitCode 2" in failure
    assert failure_message(base, log, 2) == (
        "the job exited with code 2: train.py: error: argument --model-version/--model_version: "
        "invalid int value: 'one'"
    )


def test_the_toolkits_own_crash_is_its_exceptions_message(tmp_path, monkeypatch):
    base = tmp_path / "opt-ml"
    write_layout(base, {"hub-handle": "/x", "model-name": "m"})
    # The toolkit builds a boto3 session on start: a missing profile crashes it, not the job.
    monkeypatch.setenv("AWS_PROFILE", "gone")
    monkeypatch.setenv("HOME", str(tmp_path))
    log = tmp_path / "job.log"
    status = stream_toolkit(base, log, lambda line: None)
    assert status != 0
    assert (base / "output" / "failure").read_text().startswith("Framework Error:")
    assert failure_message(base, log, status) == "The config profile (gone) could not be found"


def test_make_local_ends_a_handle_that_is_neither_file_nor_folder_in_the_jobs_message():
    # A character device exists but is neither an archive nor a folder.
    result = make_local("HANDLE=/dev/null")
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert line == (
        "The packaging job failed: Local handle '/dev/null' is neither a file (a hub .tar.gz "
        "archive) nor a folder (a SavedModel): point it at one of those. (VERBOSE=1 shows the "
        "toolkit's and TensorFlow's output)"
    )


def test_a_sample_with_a_quote_reaches_the_job_unharmed(tmp_path):
    # make passes SAMPLE in the environment: no shell quoting in between.
    out = tmp_path / "kept"
    result = make_local("""SAMPLE=["it's"]""", f"OUT={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((out / "manifest.json").read_text())["sample_input"] == ["it's"]


def test_out_naming_a_file_is_refused_and_a_failed_run_leaves_no_out(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    result = make_local(f"OUT={afile}")
    assert result.returncode != 0 and "is not an empty folder" in result.stderr
    out = tmp_path / "new"
    failed = make_local("HANDLE=/nowhere/model", f"OUT={out}")
    assert failed.returncode != 0 and not out.exists()
