"""The numbers of blue/green traffic shifting, each with its source: how large a
canary or linear step may be, how many waits an update makes, and the execution
timeout that must cover them.

Used by the stage config, the stacks (which set the timeout) and the request
check (`requests.py`); nothing here imports the CDK.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

# TrafficRoutingConfig: CanarySize at most half the variant's instances; LinearStepSize 10-50 %.
CANARY_MAX_PERCENT = 50
LINEAR_PERCENT = (10, 50)
# AutoRollbackConfig.Alarms: 1-10.
ROLLBACK_ALARMS = (1, 10)
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600-28800, and "larger than
# the total waiting time specified in TerminationWaitInSeconds and WaitIntervalInSeconds".
BLUE_GREEN_TIMEOUT_SECONDS = (600, 28800)
# The project's allowance beside those waits for the new fleet to come up before any
# traffic shifts (instances start, the image is pulled, the model loads): half an hour,
# an allowance, not a measurement (endpoint creation is documented nowhere as a bound),
# short enough that a promotion with this timeout fits the workflow's promote steps
# (tests/delivery/test_workflow.py).
NEW_FLEET_SECONDS = 1800


def step_problem(strategy: str, instances: int, fleet_sizes: Iterable[int]) -> str | None:
    """Why a canary or linear step of `instances` (CapacitySize INSTANCE_COUNT) breaks
    its document's share of the variant at one of `fleet_sizes` (every count
    autoscaling may hold when an update starts), or None."""
    if instances < 1:
        return f"a step of {instances} instance(s) moves no traffic"
    low, high = (0, CANARY_MAX_PERCENT) if strategy == "canary" else LINEAR_PERCENT
    for count in fleet_sizes:
        share = Fraction(100 * instances, count)
        if not low <= share <= high:
            return (
                f"{instances} of {count} instance(s) is {float(share):.3g} %, outside {low}-{high} % of the "
                "variant's instances"
            )
    return None


def traffic_shifts(strategy: str, step: int, fleet_size: int, *, percent: bool = False) -> int:
    """How many times a blue/green update shifts traffic, each followed by its wait
    (TrafficRoutingConfig.WaitIntervalInSeconds): all at once, once; a canary twice
    (the canary, then the rest); linear, once per step of `step` instances (or
    percent) of `fleet_size`. Counted generously: an overcount only tightens the bound."""
    if strategy == "all_at_once":
        return 1
    if strategy == "canary":
        return 2
    return -(-(100 if percent else fleet_size) // max(step, 1))


def blue_green_waiting(shifts: int, wait_seconds: int, termination_seconds: int) -> int:
    """The total waiting time MaximumExecutionTimeoutInSeconds must exceed."""
    return shifts * wait_seconds + termination_seconds


def blue_green_timeout(strategy: str, step: int | None, largest_fleet: int, wait_seconds: int) -> int:
    """The execution timeout the stacks give an update that waits `wait_seconds` after
    each shift and before ending the old fleet: the waits at the largest fleet
    autoscaling may hold, and the new fleet's allowance."""
    shifts = traffic_shifts(strategy, step or 1, largest_fleet)
    return blue_green_waiting(shifts, wait_seconds, wait_seconds) + NEW_FLEET_SECONDS


def percent_problem(strategy: str, percent: int) -> str | None:
    """Why a CAPACITY_PERCENT step breaks its document's share, or None."""
    low, high = (1, CANARY_MAX_PERCENT) if strategy == "canary" else LINEAR_PERCENT
    if not low <= percent <= high:
        return f"a {strategy} step of {percent} % is outside {low}-{high} % of the variant's instances"
    return None
