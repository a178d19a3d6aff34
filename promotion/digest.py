"""`make digest STAGE=...`: print the tree digest the stage's serving stack reports.

CI passes the digest the dev job tested to the later promotions, which refuse
to ship anything else.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import boto3

from promotion.artifacts import PromotionError, stage_artifact

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    from stacks.config import load_from_cdk_json

    config = load_from_cdk_json(ROOT / "cdk.json", args.stage, boto3.session.Session().region_name)
    cloudformation = boto3.client("cloudformation", region_name=config.region)
    try:
        print(stage_artifact(cloudformation, config.serving_stack_name)[1])
    except PromotionError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
