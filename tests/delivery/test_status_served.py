"""`make status` checks the served uncompressed prefix against its manifest: an object
added beside a promoted copy's files (write-once stops overwrites, not additions) is
loaded by every new instance, so the screen names it; an archive is one write-once
object and has nothing to list. Moto, with the stage `test_status.deploy` leaves."""

from __future__ import annotations

from delivery import status
from tests.delivery.test_status import deploy

BUCKET, SERVED = "staging-bucket", "artifacts/promoted/abc/model/"


def test_a_served_prefix_holding_exactly_its_manifests_files_says_so(staging):
    deploy(staging)
    report = status.status(staging)
    assert report["served_files"] == {"unlisted": [], "missing": []} and report["errors"] == {}
    assert "  served files: exactly the manifest's" in status.render(report).splitlines()


def test_an_object_added_beside_a_served_copy_is_named(staging):
    deploy(staging)
    s3 = staging.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{SERVED}code/inference.py", Body=b"import os")
    s3.put_object(Bucket=BUCKET, Key=f"{SERVED}m/99/saved_model.pb", Body=b"other")
    s3.put_object(Bucket=BUCKET, Key=f"{SERVED}m/98/", Body=b"")  # a folder object, which breaks S3ModelDataSource
    report = status.status(staging)
    assert report["served_files"] == {
        "unlisted": ["code/inference.py", "m/98/", "m/99/saved_model.pb"],
        "missing": [],
    }
    (line,) = [line for line in status.render(report).splitlines() if line.startswith("  served files:")]
    assert line.startswith("  served files: NOT the manifest's: unlisted ['code/inference.py', 'm/98/', 'm/99/")
    assert "at each instance start" in line


def test_a_listed_file_gone_is_named(staging):
    deploy(staging)
    staging.client("s3").delete_object(Bucket=BUCKET, Key=f"{SERVED}m/1/saved_model.pb")
    assert status.status(staging)["served_files"] == {"unlisted": [], "missing": ["m/1/saved_model.pb"]}


def test_a_served_prefix_without_a_manifest_is_one_line_and_the_rest_shows(staging):
    deploy(staging)
    staging.client("s3").delete_object(Bucket=BUCKET, Key=f"{SERVED}manifest.json")
    report = status.status(staging)
    assert report["served_files"] is None and set(report["errors"]) == {"served_files"}
    lines = status.render(report).splitlines()
    (line,) = [line for line in lines if line.startswith("  served files:")]
    assert line.startswith("  served files: could not be read: ") and "manifest.json" in line
    assert "    AllTraffic: ml.m5.large, 1 of 1 instances" in lines


def test_an_archive_or_nothing_served_has_no_listing_to_check(staging):
    assert status.served_files(staging.client("s3"), None) is None
    assert status.served_files(staging.client("s3"), f"s3://{BUCKET}/artifacts/promoted/abc/model.tar.gz") is None
