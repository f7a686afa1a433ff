"""Count collected test cases and those driven by hypothesis; print the share.

Run: `uv run python scripts/property_share.py [--minimum 0.30] [--by-directory]` (exit 1 below
the minimum). A test case is one collected item, so each parametrised case counts once; it is
a property when hypothesis wraps its function (`is_hypothesis_test`, async tests included).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections import Counter

import pytest


class _Counter:
    """A pytest plugin that looks at every collected item."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self.properties: Counter[str] = Counter()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Count items, and items whose test function hypothesis wraps, per test directory."""
        for item in items:
            directory = item.nodeid.split("::")[0].rsplit("/", 1)[0]
            self.total[directory] += 1
            if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
                self.properties[directory] += 1


def main() -> int:
    """Collect, count and compare against the minimum share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minimum", type=float, default=0.0)
    parser.add_argument("--by-directory", action="store_true", help="also show each directory")
    args = parser.parse_args()
    counter = _Counter()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider"], plugins=[counter])
    total, properties = counter.total.total(), counter.properties.total()
    if code != 0 or total == 0:
        print(output.getvalue(), file=sys.stderr)
        print("collection failed or found no tests", file=sys.stderr)
        return 1
    if args.by_directory:
        for directory in sorted(counter.total):
            count, props = counter.total[directory], counter.properties[directory]
            print(f"  {directory}: {props} of {count} = {props / count:.1%}")
    share = properties / total
    print(f"property tests: {properties} of {total} test cases = {share:.1%}")
    return 0 if share >= args.minimum else 1


if __name__ == "__main__":
    raise SystemExit(main())
