"""A stage's cloud assembly pinned to one artifact: built once per commit, deployed
as built, and kept beside the promotion record so a rollback restores the
infrastructure that served with the artifact, not today's.

`make assembly STAGE=staging DIGEST=...` synthesizes the stage pinned to the
promoted copy of that digest (no AWS call: the key follows from the digest and
the stage's serving kind); `make promote ... ASSEMBLY=dir` deploys that very
directory after checking it pins what is being promoted. Each promotion stores
the assembly it deployed, packed, content-addressed and written once, under
`promotions/assemblies/` of the target bucket.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import pathlib
import subprocess
import sys
import tarfile

from botocore.exceptions import ClientError

from delivery import artifacts
from delivery.artifacts import PromotionError
from stacks.stage.config import load_from_cdk_json
from stacks.stage.names import ServingOutputs
from tools.cli import UserError, run

ROOT = pathlib.Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
STORED = "promotions/assemblies/"


def synth_command(stage: str, artifact_key: str, digest: str, out: pathlib.Path) -> list[str]:
    return [
        str(CDK),
        "synth",
        "--quiet",
        "-c",
        f"stage={stage}",
        "-c",
        f"artifact={artifact_key}",
        "-c",
        f"artifact_digest={digest}",
        "-o",
        str(out),
    ]


def build(stage: str, artifact_key: str, digest: str, out: pathlib.Path) -> pathlib.Path:
    """Synthesize `stage` pinned to `artifact_key` into `out` (cdk-nag and the rule gate included)."""
    # Ours carries only the path; with CI set, the CDK CLI prints its messages on
    # stdout (aws-cdk's CliIoHost: "In CI mode, all non-error output goes to stdout").
    result = subprocess.run(synth_command(stage, artifact_key, digest, out), cwd=ROOT, stdout=sys.stderr)
    if result.returncode != 0:
        raise UserError(
            f"Synthesizing stage {stage} pinned to {artifact_key} failed (cdk exit code "
            f"{result.returncode}, its output is above)."
        )
    return out


def pinned(assembly: pathlib.Path, serving_stack: str) -> tuple[str, str]:
    """(artifact key, tree digest) the assembly's serving stack is pinned to."""
    template = assembly / f"{serving_stack}.template.json"
    try:
        outputs = json.loads(template.read_text())["Outputs"]
        location = outputs[ServingOutputs.ARTIFACT_LOCATION]["Value"]
        digest = outputs[ServingOutputs.TREE_DIGEST]["Value"]
        # s3://{bucket export}/<key>: the key is the last, literal part.
        key = location["Fn::Join"][1][-1].removeprefix("/")
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise PromotionError(
            f"{assembly} holds no serving stack {serving_stack} pinned to an artifact with its digest ({error!r})."
        ) from error
    return key, digest


def require_pinned(assembly: pathlib.Path, serving_stack: str, artifact_key: str, digest: str) -> None:
    found = pinned(assembly, serving_stack)
    if found != (artifact_key, digest):
        raise PromotionError(
            f"The assembly {assembly} deploys {found[0]} ({found[1]}), not {artifact_key} "
            f"({digest}): build it for this promotion."
        )


def deploy(assembly: pathlib.Path, only: str | None = None) -> None:
    """`cdk deploy` of the stacks of `assembly` as they were synthesized: all, or only
    the stack `only` (not the stacks it depends on). A failure is one line; the
    promotion or rollback that deploys adds what it logged and what to run next
    (`target.after_start`)."""
    stacks = [only, "--exclusively"] if only else ["--all"]
    command = [str(CDK), "deploy", "--app", str(assembly), *stacks, "--require-approval", "never"]
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        raise UserError(f"The deploy of {assembly} failed (cdk exit code {result.returncode}, its output is above).")


def pack(assembly: pathlib.Path) -> bytes:
    """The assembly as a gzipped tar with fixed metadata (same files, same bytes)."""
    buffer = io.BytesIO()
    # gzip's header carries a time too (tarfile's "w:gz" sets it to now).
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for path in sorted(assembly.rglob("*")):
            if path.is_file() and not path.is_symlink():
                info = tarfile.TarInfo(path.relative_to(assembly).as_posix())
                info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
    return buffer.getvalue()


def store(s3, bucket: str, assembly: pathlib.Path) -> dict[str, str]:
    """Write the packed assembly once under its sha256; return where, for the record."""
    body = pack(assembly)
    digest = hashlib.sha256(body).hexdigest()
    key = f"{STORED}{digest}.tar.gz"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
            raise
        # The same bytes are there already: content-addressed.
    return {"key": key, "sha256": digest}


def restore(s3, bucket: str, stored: dict[str, str], into: pathlib.Path) -> pathlib.Path:
    """Download a stored assembly, check its sha256, unpack it safely into `into`."""
    if not str(stored.get("key", "")).startswith(STORED):
        raise PromotionError(f"{stored.get('key')!r} is not a stored assembly.")
    body = s3.get_object(Bucket=bucket, Key=stored["key"])["Body"].read()
    if hashlib.sha256(body).hexdigest() != stored.get("sha256"):
        raise PromotionError(f"s3://{bucket}/{stored['key']} does not hash to its record's sha256: refusing it.")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile():
                raise PromotionError(f"s3://{bucket}/{stored['key']} holds {member.name!r}, not a plain file.")
        try:
            archive.extractall(into, filter="data")
        except tarfile.FilterError as error:
            raise PromotionError(f"s3://{bucket}/{stored['key']}: {error}") from error
    return into


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Build a stage's assembly pinned to a promoted digest")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--digest", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if not artifacts.DIGEST.match(args.digest):
        raise UserError(f"DIGEST {args.digest[:80]!r} is not a tree digest (64 lowercase hex characters).")
    config = load_from_cdk_json(ROOT / "cdk.json", args.stage, {})
    key = artifacts.promoted_key(args.digest, archive=config.is_serverless)
    out = build(args.stage, key, args.digest, pathlib.Path(args.out).resolve())
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
