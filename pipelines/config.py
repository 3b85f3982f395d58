"""Versioned config files (config/*.toml), loaded once and read everywhere."""
from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from pipelines import CONFIG_DIR


class ConfigError(ValueError):
    """A config file is missing or inconsistent; the message says which and how to fix it."""


@functools.cache
def load(name: str) -> dict:
    path = CONFIG_DIR / f"{name}.toml"
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} is missing; restore it from git") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def telemetry() -> dict:
    return load("telemetry")


def metric_contract() -> dict:
    return load("metric_contract")


def pipeline() -> dict:
    return load("pipeline")


METRICS = ("tcr", "hr", "tta_p50_s", "hitl_per_100", "retention_delta_pts", "cpvo_usd")

_OPS = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}


def threshold_text(metric: str) -> str:
    m = metric_contract()["metrics"][metric]
    return f"green {m['green_op']} {m['green']:g}, red {m['red_op']} {m['red']:g} (contract {metric_contract()['version']})"


def status(metric: str, value: float | None) -> str:
    """green / amber / red against the metric contract; 'n/a' when there is no value."""
    if value is None or value != value:  # None or NaN
        return "n/a"
    m = metric_contract()["metrics"][metric]
    if _OPS[m["green_op"]](value, m["green"]):
        return "green"
    if _OPS[m["red_op"]](value, m["red"]):
        return "red"
    return "amber"


def touched_by(stage: str, table: str, inputs: dict[str, list[str] | tuple[str, ...]]) -> list[str]:
    """The names (metrics, measures) a gate result on `table` (of `stage`) touches, given
    each name's telemetry inputs: raw/staging tables by input, every name for the metrics
    stage's tables and the ingest summary, none for the bridge and audit stages."""
    if stage == "metrics":
        return list(inputs)
    if stage not in ("raw", "staging"):
        return []
    source = table.removeprefix("src_").removeprefix("stg_")
    if source == "meta_ingest_summary":
        return list(inputs)
    return [m for m, tables in inputs.items() if source in tables]


def metric_inputs(metric: str) -> list[str]:
    """The telemetry tables an L6 metric is computed from (metric_contract.toml `inputs`)."""
    return list(metric_contract()["metrics"][metric].get("inputs", []))


def metrics_touched(stage: str, table: str) -> list[str]:
    """The L6 metrics a gate result touches, by each metric's `inputs` (metric_contract.toml)."""
    return touched_by(stage, table, {m: metric_inputs(m) for m in METRICS})


def default_db() -> Path:
    import os

    env = os.environ.get("KPI_BRIDGE_DB")
    if env:
        return Path(env)
    from pipelines import ROOT

    return ROOT / pipeline()["default_db"]
