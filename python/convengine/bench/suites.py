"""Named suites: quick (the default, a couple of minutes), full, and one per group."""

import re

from . import cases, conv_cases, e2e_cases


def all_cases():
    return (cases.gemm_cases() + conv_cases.conv_cases() + conv_cases.pool_cases()
            + cases.elementwise_cases() + e2e_cases.e2e_cases())


def _groups():
    return sorted({c.group for c in all_cases()})


SUITES = ["quick", "full"] + _groups()


def select_cases(suite="quick", pattern=None):
    """Cases of a suite, optionally only those whose name matches the regex `pattern`."""
    if suite not in SUITES:
        raise ValueError(f"bench: unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
    chosen = all_cases()
    if suite == "quick":
        chosen = [c for c in chosen if c.quick]
    elif suite != "full":
        chosen = [c for c in chosen if c.group == suite]
    if pattern:
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"bench: --filter {pattern!r} is not a valid regex: {error}") from None
        chosen = [c for c in chosen if regex.search(c.name)]
    return chosen
