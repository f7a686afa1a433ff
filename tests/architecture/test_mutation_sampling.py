"""How the bounded mutation run in CI picks the mutants it gates on (scripts/mutation.py).

CI cannot afford every mutant of a module a change touches, so it gates on a sample: the
mutants of the changed functions first, then a seeded draw of the others. These tests pin the
pieces that decide the sample: reading a diff's hunks, naming functions as mutmut does, and the
draw itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "chatscope_mutation", ROOT / "scripts/mutation.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


mutation = _load_script()

SOURCE = '''\
import functools


def plain(x):
    return x + 1


@functools.wraps(plain)
async def decorated(y):
    return y


class Store:
    """A class."""

    def __init__(self):
        self.n = 0

    async def write(self, value):
        self.n = value
        return value
'''


def test_function_spans_name_functions_and_methods_as_mutmut_does() -> None:
    """`x_name` for functions, `xǁClassǁmethod` for methods, decorators inside the span."""
    assert mutation.function_spans(SOURCE) == {
        "x_plain": range(4, 6),
        "x_decorated": range(8, 11),
        "xǁStoreǁ__init__": range(16, 18),
        "xǁStoreǁwrite": range(19, 22),
    }


@pytest.mark.parametrize(
    ("mutant", "function"),
    [
        ("chatscope.services.runtime.auth.x__usable__mutmut_4", "x__usable"),
        (
            "chatscope.services.history.compression.xǁHistoryCompressorǁ__init____mutmut_10",
            "xǁHistoryCompressorǁ__init__",
        ),
        ("chatscope.adapters.storage.sql_history.xǁ_Viewǁof__mutmut_1", "xǁ_Viewǁof"),
    ],
)
def test_a_mutant_belongs_to_the_function_its_name_starts_with(mutant: str, function: str) -> None:
    """The function part of a mutmut name is everything before `__mutmut_N`."""
    assert mutation.function_of(mutant) == function


@pytest.mark.parametrize("module", mutation.mutmut_modules())
def test_every_mutant_of_a_critical_module_maps_to_one_of_its_functions(module: str) -> None:
    """The diff-to-function mapping knows every function mutmut mutates in that module."""
    names = mutation.mutant_names(module)
    spans = mutation.function_spans((ROOT / module).read_text(encoding="utf-8"))
    assert names
    assert {mutation.function_of(name) for name in names} <= set(spans)


hunks = st.lists(
    st.tuples(st.integers(min_value=1, max_value=500), st.integers(min_value=0, max_value=20)),
    max_size=8,
)


@given(hunks=hunks)
def test_changed_lines_are_the_new_side_of_every_hunk(hunks: list[tuple[int, int]]) -> None:
    """`+start,count` covers count lines from start; a pure deletion marks the line before it."""
    header = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
    body = "".join(f"@@ -1,2 +{start},{count} @@ def f():\n+x\n" for start, count in hunks)
    expected = {line for start, count in hunks for line in range(start, start + max(count, 1))}
    assert mutation.changed_lines(header + body) == expected


def test_a_hunk_without_a_count_is_one_line() -> None:
    """`+12` alone (git's short form) is line 12."""
    assert mutation.changed_lines("@@ -12 +12 @@\n-a\n+b\n") == {12}


names = st.lists(
    st.tuples(st.sampled_from(["x_a", "x_b", "xǁCǁm", "xǁCǁn"]), st.integers(1, 60)),
    unique=True,
    max_size=120,
).map(lambda pairs: [f"pkg.mod.{function}__mutmut_{number}" for function, number in pairs])


@given(
    names=names,
    changed=st.sets(st.sampled_from(["x_a", "x_b", "xǁCǁm", "xǁCǁn"])),
    size=st.integers(min_value=0, max_value=150),
    seed=st.text(max_size=8),
)
def test_the_sample_takes_changed_functions_first_then_draws_the_rest(
    names: list[str], changed: set[str], size: int, seed: str
) -> None:
    """At most `size` distinct mutants of the module; every changed-function mutant while they
    fit, otherwise only those; the same seed draws the same sample."""
    sample, from_changes = mutation.draw_sample(names, changed, size, seed)
    touched = {name for name in names if mutation.function_of(name) in changed}
    assert len(sample) == len(set(sample)) == min(size, len(names))
    assert set(sample) <= set(names)
    assert from_changes == len(touched & set(sample))
    if len(touched) <= size:
        assert touched <= set(sample)
    else:
        assert set(sample) <= touched
    assert mutation.draw_sample(names, changed, size, seed) == (sample, from_changes)


@given(budget=st.floats(min_value=0, max_value=10_000), modules=st.integers(1, 9))
def test_a_sample_never_shrinks_below_the_minimum_and_grows_with_the_budget(
    budget: float, modules: int
) -> None:
    """More seconds never mean fewer mutants, and never fewer than MIN_SAMPLE per module."""
    size = mutation.sample_size(budget, modules)
    assert size >= mutation.MIN_SAMPLE
    assert mutation.sample_size(budget + 100, modules) >= size


@given(head=st.text(min_size=1, max_size=40))
def test_the_canary_is_one_of_the_modules_and_the_same_for_the_same_commit(head: str) -> None:
    """A commit that changes no critical module always checks the same one of them."""
    modules = mutation.mutmut_modules()
    canary = mutation.canary_module(head, modules)
    assert canary in modules
    assert mutation.canary_module(head, tuple(reversed(modules))) == canary


def test_successive_commits_take_turns_over_every_module() -> None:
    """Over a few hundred commits every critical module is the canary at some point."""
    modules = mutation.mutmut_modules()
    chosen = {mutation.canary_module(f"{number:040x}", modules) for number in range(300)}
    assert chosen == set(modules)


def test_the_canary_plan_gates_a_sample_of_its_module() -> None:
    """The canary runs MIN_SAMPLE of its module's mutants, none counted as changed."""
    head = "0" * 40
    plan = mutation.canary_plan(head)
    [module] = plan.selected
    sample = plan.samples[module]
    assert module == mutation.canary_module(head, mutation.mutmut_modules())
    assert len(sample.names) == mutation.MIN_SAMPLE
    assert sample.from_changes == 0
    assert set(sample.names) <= set(mutation.mutant_names(module))
