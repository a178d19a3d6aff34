"""`make status`'s screen: the report `delivery/status.py` gathers, one line per fact.

A section that could not be read (its key in the report's `errors`) is one line
saying so and why, in place of that section's lines; the rest of the screen is
unchanged by it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NOT_DEPLOYED = "NOT DEPLOYED"
# The sections `status` reads on their own, by their key in the report, as the screen names them.
SECTIONS = {
    "endpoint": "endpoint",
    "served_files": "served files",
    "last_promotion": "last promotion",
    "alarms": "alarms",
    "last_packaging_job": "last packaging job",
}


def render(report: dict[str, Any]) -> str:
    lines = [f"Stage {report['stage']} ({report['account'] or 'any account'}, {report['region']})"]
    for name, stack in report["stacks"].items():
        reason = f": {stack['reason']}" if stack.get("reason") else ""
        lines.append(f"  stack {name}: {stack['status']}{reason}")
    lines += _section(report, "endpoint", _endpoint)
    lines.append(f"  serves: {report['artifact'] or 'nothing reported'}")
    lines.append(f"  digest: {report['digest'] or 'none reported'}")
    lines += _section(report, "served_files", _served_files)
    lines += _section(report, "last_promotion", _promotion)
    lines += _section(report, "alarms", _alarms)
    lines += _section(report, "last_packaging_job", _packaging_job)
    lines.append(f"  dashboard: {report['dashboard'] or _no_dashboard(report)}")
    return "\n".join(lines)


def _section(report: dict[str, Any], key: str, lines: Callable[[dict[str, Any]], list[str]]) -> list[str]:
    """The section's lines, or the one line saying why it could not be read."""
    error = report["errors"].get(key)
    if error is not None:
        return [f"  {SECTIONS[key]}: could not be read: {error}"]
    return lines(report)


def _endpoint(report: dict[str, Any]) -> list[str]:
    point = report["endpoint"]
    if point is None:
        return ["  endpoint: none"]
    failure = f" ({point['failure']})" if point.get("failure") else ""
    lines = [f"  endpoint: {point['status']}{failure}, since {point['since']}"]
    for variant in point["variants"]:
        if "serverless" in variant:
            settings = variant["serverless"]
            lines.append(
                f"    {variant['name']}: serverless, {settings.get('MemorySizeInMB')} MB, "
                f"up to {settings.get('MaxConcurrency')} concurrent"
            )
        else:
            lines.append(
                f"    {variant['name']}: {variant['instance_type']}, {variant['current_instances']} of "
                f"{variant['desired_instances']} instances"
            )
    return lines


def _served_files(report: dict[str, Any]) -> list[str]:
    check = report["served_files"]
    if check is None:
        return []
    if not check["unlisted"] and not check["missing"]:
        return ["  served files: exactly the manifest's"]
    return [
        f"  served files: NOT the manifest's: unlisted {check['unlisted'][:5]}, missing {check['missing'][:5]}; "
        "SageMaker downloads every object under the prefix at each instance start, which fails on one its "
        "Model may not read or serves one it may: find who wrote them (the bucket's access logs) and serve "
        "another verified state before the next scale-out (README, "
        "Who can change what serves)"
    ]


def _promotion(report: dict[str, Any]) -> list[str]:
    promotion = report["last_promotion"]
    if promotion is None:
        return ["  last promotion: none"]
    what = f"rollback to {promotion['rollback_to']}" if promotion.get("rollback_to") else f"from {promotion['from']}"
    outcome = (
        f"smoke test {promotion['smoke']}"
        if promotion["finished"]
        else "its deploy started; no outcome recorded (failed, cancelled or still running)"
    )
    return [f"  last promotion: {what} at {promotion['time']}, commit {promotion['commit']}, {outcome}"]


def _alarms(report: dict[str, Any]) -> list[str]:
    return [f"  alarm {name}: {state}" for name, state in report["alarms"].items()] or ["  alarms: none configured"]


def _packaging_job(report: dict[str, Any]) -> list[str]:
    job = report["last_packaging_job"]
    if job is None:
        return ["  last packaging job: none yet"] if report["packages"] else []
    if job.get("seconds") is None:
        took = ""
    elif job["status"] == "InProgress":
        took = f", running for {job['seconds']} s"
    else:
        took = f", took {job['seconds']} s"
    failure = f" ({job['failure']})" if job.get("failure") else ""
    return [f"  last packaging job: {job['name']}: {job['status']}{took}{failure}"]


def _no_dashboard(report: dict[str, Any]) -> str:
    if report["stacks"][report["serving_stack"]]["status"] == NOT_DEPLOYED:
        return "none (serving stack not deployed)"
    return "none (the serving stack has no DashboardUrl output: redeploy it with this version of the project)"
