"""Count collected test cases and those driven by hypothesis; print the share.

Run: `uv run python scripts/property_share.py [--minimum 0.30]` (exit 1 below the minimum).
"""

from __future__ import annotations

import argparse
import sys

import pytest


class _Counter:
    """A pytest plugin that looks at every collected item."""

    def __init__(self) -> None:
        self.total = 0
        self.properties = 0

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Count items whose test function hypothesis wraps."""
        self.total = len(items)
        self.properties = sum(
            1 for item in items if getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
        )


def main() -> int:
    """Collect, count and compare against the minimum share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minimum", type=float, default=0.0)
    args = parser.parse_args()
    counter = _Counter()
    code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider"], plugins=[counter])
    if code != 0 or counter.total == 0:
        print("collection failed or found no tests", file=sys.stderr)
        return 1
    share = counter.properties / counter.total
    print(f"property tests: {counter.properties} of {counter.total} test cases = {share:.1%}")
    return 0 if share >= args.minimum else 1


if __name__ == "__main__":
    raise SystemExit(main())
