"""An AST scan for state that outlives a scope: module-level mutable values, `global` /
`nonlocal`, and memoising caches.

The rules, exactly (docs/testing.md repeats them):

1. **mutable-module-state**: at module level (including inside top-level `if` / `try` /
   `with` blocks) or in a class body, an assignment whose value is a list, dict or set display
   or comprehension, or a call of `list`, `dict`, `set`, `bytearray`, `defaultdict`, `deque`,
   `OrderedDict`, `Counter`, `ChainMap`, `WeakValueDictionary`, `WeakKeyDictionary` or
   `WeakSet` (by name or as `module.name`). `__all__` is exempt (read by tools, never
   changed). Values wrapped in an immutable constructor (`MappingProxyType(...)`,
   `frozenset(...)`, `tuple(...)`) are not mutable and pass. An augmented assignment
   (`X += ...`) at module level or in a class body is flagged too, whatever its value.
2. **global-statement**: any `global` or `nonlocal` statement, anywhere.
3. **cache**: any use of `functools.lru_cache`, `functools.cache` or
   `functools.cached_property`, anywhere: imported by name (`from functools import cache`)
   or used as an attribute (`functools.lru_cache`). Caches are refused everywhere, not only
   next to settings or credentials: a memo keyed on a scope's inputs is exactly the kind of
   state that leaks between scopes, and nothing in chatscope needs one.

Function bodies may build whatever they like: that state dies with the call.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MUTABLE_CALLS", "Finding", "scan_paths", "scan_source"]

MUTABLE_CALLS = frozenset(
    {
        "list",
        "dict",
        "set",
        "bytearray",
        "defaultdict",
        "deque",
        "OrderedDict",
        "Counter",
        "ChainMap",
        "WeakValueDictionary",
        "WeakKeyDictionary",
        "WeakSet",
    }
)
CACHES = frozenset({"lru_cache", "cache", "cached_property"})
EXEMPT_TARGETS = frozenset({"__all__"})
_MUTABLE_DISPLAYS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
_NESTED_BLOCKS = (ast.If, ast.Try, ast.With, ast.For, ast.While)


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken at one place."""

    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


def scan_source(source: str, path: str = "<source>") -> list[Finding]:
    """Every finding in one module's source, in line order."""
    tree = ast.parse(source, filename=path)
    findings = list(_module_state(tree.body, path))
    findings += _statements_anywhere(tree, path)
    return sorted(findings, key=lambda finding: (finding.line, finding.rule))


def scan_paths(paths: Iterable[Path], root: Path) -> list[Finding]:
    """Every finding in the given files, paths shown relative to `root`."""
    findings: list[Finding] = []
    for path in sorted(paths):
        shown = str(path.relative_to(root))
        findings += scan_source(path.read_text(encoding="utf-8"), shown)
    return findings


def _module_state(body: list[ast.stmt], path: str) -> Iterator[Finding]:
    """Rule 1 over module-level statements, nested blocks and class bodies."""
    for statement in body:
        if isinstance(statement, ast.ClassDef):
            yield from _module_state(statement.body, path)
        elif isinstance(statement, _NESTED_BLOCKS):
            for block in _blocks_of(statement):
                yield from _module_state(block, path)
        else:
            yield from _assignment(statement, path)


def _blocks_of(statement: ast.stmt) -> Iterator[list[ast.stmt]]:
    for name in ("body", "orelse", "finalbody"):
        block = getattr(statement, name, None)
        if block:
            yield block
    for handler in getattr(statement, "handlers", ()):
        yield handler.body


def _assignment(statement: ast.stmt, path: str) -> Iterator[Finding]:
    if isinstance(statement, ast.AugAssign):
        name = _target_name(statement.target)
        if name not in EXEMPT_TARGETS:
            yield Finding(
                path, statement.lineno, "mutable-module-state", f"{name} changed in place"
            )
        return
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    else:
        return
    names = [_target_name(target) for target in targets]
    if all(name in EXEMPT_TARGETS for name in names):
        return
    kind = _mutable_kind(value)
    if kind is not None:
        shown = ", ".join(names)
        yield Finding(path, statement.lineno, "mutable-module-state", f"{shown} = {kind}")


def _target_name(target: ast.expr) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return ast.unparse(target)


def _mutable_kind(value: ast.expr) -> str | None:
    """What makes `value` mutable (a display or a constructor call), or None."""
    if isinstance(value, _MUTABLE_DISPLAYS):
        return f"a {type(value).__name__.lower()} display"
    if isinstance(value, ast.Call):
        name = _called_name(value.func)
        if name in MUTABLE_CALLS:
            return f"{name}(...)"
    return None


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _statements_anywhere(tree: ast.Module, path: str) -> Iterator[Finding]:
    """Rules 2 and 3: `global` / `nonlocal` and caches, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal):
            keyword = "global" if isinstance(node, ast.Global) else "nonlocal"
            shown = ", ".join(node.names)
            yield Finding(path, node.lineno, "global-statement", f"{keyword} {shown}")
        elif isinstance(node, ast.ImportFrom) and node.module == "functools":
            for alias in node.names:
                if alias.name in CACHES:
                    yield Finding(path, node.lineno, "cache", f"functools.{alias.name} imported")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in CACHES
            and isinstance(node.value, ast.Name)
            and node.value.id == "functools"
        ):
            yield Finding(path, node.lineno, "cache", f"functools.{node.attr} used")
