"""Hydra's sweep grammar -> Optuna distributions, as the official hydra-optuna-sweeper reads it.

`interval(a, b)` float (int if both ends are ints), `tag(log, interval(a, b))` log scale, `int(interval(...))`,
`range(a, b[, step])` stepped ints (floats if any bound is a float), `choice(...)` categorical; anything
that is not a sweep stays a fixed override.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def distribution_from_override(override: Override) -> BaseDistribution | str:
    """An Optuna distribution for a sweep override; the value as a string for a fixed one."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value: Any = override.value()  # a sweep object, typed loosely by Hydra
    if override.is_choice_sweep():
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))  # type: ignore[arg-type]
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        if value.shuffle:
            return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))  # type: ignore[arg-type]
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(value.start, value.stop, step=value.step)  # type: ignore[arg-type]  # set in a range sweep
        # Like Python's range, the stop is excluded.
        return IntDistribution(int(value.start), int(value.stop) - int(value.step), step=int(value.step))  # type: ignore[arg-type]
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(int(value.start), int(value.end), log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)  # type: ignore[arg-type]  # set in an interval
    raise NotImplementedError(f"{override} is not a sweep Optuna can search (use interval, range or choice)")


def parse_search_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str]
) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split config `params` and command-line arguments into searched distributions and fixed overrides.

    Command-line arguments win over `params` for the same key, as in the official plugin.
    """
    parser = OverridesParser.create()
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    searched: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in parser.parse_overrides(lines) + parser.parse_overrides(list(arguments)):
        key = override.get_key_element()
        result = distribution_from_override(override)
        searched.pop(key, None)
        fixed.pop(key, None)
        if isinstance(result, BaseDistribution):
            searched[key] = result
        else:
            fixed[key] = result
    return searched, fixed


def to_override_value(value: Any) -> str:
    """A sampled value as Hydra override text (categoricals are already encoded strings)."""
    return value if isinstance(value, str) else repr(value)
