"""No state outlives a scope: the source has no module-level mutable values, no `global`, no
caches; and the scan that checks this flags every such form it is shown."""

from __future__ import annotations

import keyword
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.architecture.module_state_scan import MUTABLE_CALLS, scan_paths, scan_source

ROOT = Path(__file__).resolve().parents[2]

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and name != "__all__"
)
mutable_values = st.sampled_from(
    [
        "[]",
        "[1, 2]",
        "{}",
        "{'a': 1}",
        "{1, 2}",
        "[x for x in range(3)]",
        "{x: x for x in range(3)}",
        "{x for x in range(3)}",
    ]
    + [f"{call}()" for call in sorted(MUTABLE_CALLS)]
    + ["collections.defaultdict(list)", "collections.deque(maxlen=3)", "weakref.WeakSet()"]
)
immutable_values = st.sampled_from(
    [
        "()",
        "(1, 2)",
        "'text'",
        "42",
        "None",
        "frozenset({1, 2})",
        "MappingProxyType({'a': [1]})",
        "tuple([1, 2])",
        "re.compile('x')",
        "object()",
        "lambda: []",
    ]
)
module_blocks = st.sampled_from(
    [
        "{statement}",
        "if True:\n    {statement}",
        "try:\n    {statement}\nexcept ImportError:\n    pass",
        "try:\n    pass\nexcept ImportError:\n    {statement}",
        "class Holder:\n    {statement}",
        "class Outer:\n    class Inner:\n        {statement}",
    ]
)
function_blocks = st.sampled_from(
    [
        "def build():\n    {statement}",
        "async def build():\n    {statement}",
        "class Holder:\n    def method(self):\n        {statement}",
    ]
)


def test_the_source_holds_no_module_state_globals_or_caches() -> None:
    """Scanning every module of src/ finds nothing (see the scan's rules)."""
    findings = scan_paths((ROOT / "src").rglob("*.py"), ROOT)
    assert not findings, "\n".join(str(finding) for finding in findings)


def test_the_scan_covers_every_source_module() -> None:
    """The scan reads the real package, not an empty glob."""
    modules = list((ROOT / "src" / "chatscope").rglob("*.py"))
    assert len(modules) > 40
    assert any(module.name == "runtime.py" for module in modules)


@given(name=names, value=mutable_values, block=module_blocks)
def test_a_mutable_value_at_module_or_class_level_is_flagged(
    name: str, value: str, block: str
) -> None:
    """Any mutable display or constructor bound at module or class level is one finding."""
    source = block.format(statement=f"{name} = {value}")
    findings = scan_source(source)
    assert [finding.rule for finding in findings] == ["mutable-module-state"]
    assert (
        findings[0].line
        == source.splitlines().index(
            next(line for line in source.splitlines() if f"{name} = " in line)
        )
        + 1
    )


@given(name=names, value=mutable_values)
def test_an_annotated_mutable_value_is_flagged_too(name: str, value: str) -> None:
    """A type annotation does not make a dict immutable."""
    findings = scan_source(f"{name}: object = {value}")
    assert [finding.rule for finding in findings] == ["mutable-module-state"]


@given(name=names, value=mutable_values | immutable_values, block=function_blocks)
def test_values_built_inside_functions_are_not_module_state(
    name: str, value: str, block: str
) -> None:
    """State created by a call dies with the call: function bodies are never flagged."""
    assert scan_source(block.format(statement=f"{name} = {value}")) == []


@given(name=names, value=immutable_values, block=module_blocks)
def test_immutable_values_pass_at_module_level(name: str, value: str, block: str) -> None:
    """Tuples, frozensets, mapping proxies, constants and other objects are not flagged."""
    assert scan_source(block.format(statement=f"{name} = {value}")) == []


@given(value=mutable_values)
def test_dunder_all_is_exempt(value: str) -> None:
    """`__all__` may be a list: tools read it and nothing changes it."""
    assert scan_source(f"__all__ = {value}") == []
    assert scan_source(f"__all__ += {value}") == []


@given(name=names, value=immutable_values | mutable_values)
def test_changing_a_module_value_in_place_is_flagged(name: str, value: str) -> None:
    """`X += ...` at module level mutates module state, whatever is added."""
    findings = scan_source(f"{name} = ()\n{name} += {value}")
    assert [(finding.rule, finding.line) for finding in findings][-1:] == [
        ("mutable-module-state", 2)
    ]


@given(
    statement=st.sampled_from(["global", "nonlocal"]),
    name=names,
    depth=st.integers(min_value=1, max_value=3),
)
def test_global_and_nonlocal_are_flagged_at_any_depth(
    statement: str, name: str, depth: int
) -> None:
    """A `global` or `nonlocal` statement, however deeply nested, is one finding."""
    lines = [f"{name} = 0"]
    for level in range(depth):
        lines.append("    " * level + f"def f{level}():")
        lines.append("    " * (level + 1) + f"{name} = {level}")
    lines.append("    " * depth + f"{statement} {name}")
    findings = scan_source("\n".join(lines) + "\n")
    assert [finding.rule for finding in findings] == ["global-statement"]
    assert findings[0].detail == f"{statement} {name}"


@pytest.mark.parametrize(
    "source",
    [
        "from functools import lru_cache",
        "from functools import cache",
        "from functools import cached_property",
        "from functools import partial, lru_cache as memo",
        "import functools\n@functools.lru_cache(maxsize=8)\ndef f(): pass",
        "import functools\n@functools.cache\ndef f(): pass",
        "import functools\nclass C:\n    @functools.cached_property\n    def x(self): return 1",
        "import functools\ndef f():\n    memo = functools.lru_cache()(len)",
    ],
)
def test_every_way_to_reach_a_cache_is_flagged(source: str) -> None:
    """Caches are refused by import or by attribute, decorator or plain call."""
    assert [finding.rule for finding in scan_source(source)] == ["cache"]


@pytest.mark.parametrize(
    "source",
    [
        "from functools import partial, reduce, wraps",
        "import functools\nf = functools.partial(print, 1)",
        "cache = None",
        "def cache(): pass",
        "class Holder:\n    cache: tuple[int, ...] = ()",
    ],
)
def test_other_functools_and_names_called_cache_pass(source: str) -> None:
    """Only functools' memoising decorators count; a variable named `cache` is fine."""
    assert scan_source(source) == []


def test_findings_say_where_and_what() -> None:
    """A finding names the file, the line, the rule and the offending binding."""
    source = textwrap.dedent(
        """\
        import functools
        REGISTRY = {}
        def f():
            global REGISTRY
        """
    )
    shown = [str(finding) for finding in scan_source(source, "pkg/mod.py")]
    assert shown == [
        "pkg/mod.py:2: mutable-module-state: REGISTRY = a dict display",
        "pkg/mod.py:4: global-statement: global REGISTRY",
    ]
