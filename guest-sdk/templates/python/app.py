"""A scaling policy in Python: ARC's formula plus one spare runner per `spare_every` assigned jobs.

WIT -> Python: each exported interface is a class named after it (Lifecycle, Scaler), records are dataclasses
with snake_case fields, option<T> is Optional[T], list<u8> is bytes, and `result::err` is raised as
componentize_py_types.Err(...).
"""

import json
import math

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import logging, types

_config = {"spare_every": 0}


class Lifecycle(exports.Lifecycle):
    def info(self) -> types.PolicyInfo:
        return types.PolicyInfo(name="{{name}}", version="0.1.0", sdk_version="componentize-py-0.25.1")

    def configure(self, scale_set: types.ScaleSetRef, config_json: str) -> None:
        parsed = json.loads(config_json) if config_json and config_json != "null" else {}
        spare_every = parsed.get("spareEvery", 0)
        if not isinstance(spare_every, int) or spare_every < 0:
            raise Err(types.PolicyError_InvalidConfig("spareEvery must be a non-negative integer"))
        _config["spare_every"] = spare_every
        if logging.enabled(logging.Level.INFO):
            logging.log(logging.Level.INFO, f"configured for {scale_set.namespace}/{scale_set.name}", [])


class Scaler(exports.Scaler):
    def decide(self, input: types.ScaleInput) -> types.ScaleDecision:
        low, high = input.bounds.min_runners, input.bounds.max_runners
        assigned = input.statistics.assigned_jobs
        every = _config["spare_every"]
        spares = math.ceil(assigned / every) if every > 0 else 0
        desired = min(low + assigned + spares, high)
        previous = input.previous
        # ARC's drain rule: quiet since the last decision, target unchanged, at the floor.
        drain = (
            input.job_events_since_previous == 0
            and previous is not None
            and previous.desired_runners == desired
            and desired == low
        )
        return types.ScaleDecision(
            desired_runners=desired,
            max_capacity=high,
            min_runners=low,
            drain=drain,
            requeue_after_ms=None,
            reason=f"min {low} + assigned {assigned} + spares {spares}",
            state=b"",
            attributes=[],
        )
