"""Wiring mutants for the declarative containers, each run against the container tests.

mutmut mutates function bodies, and a `DeclarativeContainer` has none: what it does is its
wiring, a class body of provider declarations. A mutant there is a wiring mistake, so this
script makes exactly those, one at a time, on a private copy of the package:

  lifetime   `Factory` <-> `Singleton`: a per-scope object shared by every scope (a leak
             between conversations), or an application-wide one rebuilt on every use
  drop-arg   one argument of a provider call left out: a dependency never injected
  swap-args  two neighbouring keyword arguments of one call exchanged: right parts, wrong
             places (neighbours only: all pairs would be quadratic and mostly type errors)
  instance   `x.provider` -> `x`: a built object passed where a factory was expected
  entry      one entry of a mapping given to a provider left out (an adapter factory by name)

`instance_of=` of a `Dependency` is left alone: it only narrows what the container accepts.
A `Singleton` of an immutable builtin value (`str`, `int`, ...) keeps its lifetime: rebuilding
an equal value on every use is equivalent by construction, so that mutant is not made.
A mutant is killed when the tests fail (or time out) against it, and survives when they pass.

Run: `uv run python scripts/mutation_wiring.py [--jobs 2] [--json FILE] [--list]`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "chatscope"
CONTAINER_MODULES = (
    "containers/providers.py",
    "containers/storage.py",
    "containers/tools.py",
    "containers/application.py",
    "containers/runtime.py",
)
# Every in-process test that builds the application, most direct first: with -x the first
# failure ends a killed mutant's run. The CLI tests (a process each) are left out for speed.
TESTS = (
    "tests/integration/containers/test_container_wiring.py",
    "tests/integration/containers/test_containers.py",
    "tests/integration/containers/test_scope_tools.py",
    "tests/integration/mcp/test_fake_servers_in_app.py",
    "tests/integration/mcp/test_mcp_scopes.py",
    "tests/integration/mcp/test_app_stdio_servers.py",
    "tests/integration/containers/test_isolation_over_http.py",
    "tests/integration/containers/test_faults.py",
    "tests/integration/containers/test_fallback_over_http.py",
    "tests/integration/sessions/test_sessions_containers.py",
    "tests/integration/test_compression_flow.py",
    "tests/unit/subagents/test_task.py",
    "tests/integration/tracing/test_turn_spans.py",
)
LIFETIMES = {"Factory": "Singleton", "Singleton": "Factory"}
CALLABLE_FIRST = frozenset({"Factory", "Singleton", "Callable", "Resource", "Container"})
VALUE_TYPES = frozenset({"str", "int", "float", "bool", "tuple", "frozenset"})
PER_MUTANT_TIMEOUT = 300.0  # for the clean run; mutants get five times its duration


@dataclass(frozen=True, slots=True)
class Mutant:
    """One wiring change: where (module, line, provider attribute), which operator, what."""

    module: str
    site: int
    operator: str
    detail: str
    line: int
    target: str

    @property
    def name(self) -> str:
        """A stable id: module, call site, operator and detail."""
        return f"{self.module}:{self.site}:{self.operator}:{self.detail}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the tests said about one mutant."""

    mutant: Mutant
    status: str  # "killed", "timeout" or "survived"
    seconds: float


def _provider_calls(tree: ast.Module) -> Iterator[tuple[ast.Call, str]]:
    """Every `providers.X(...)` call in a container class body, with the attribute it defines."""
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.Assign | ast.AnnAssign) or statement.value is None:
                continue
            target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
            name = target.id if isinstance(target, ast.Name) else "?"
            for inner in ast.walk(statement.value):
                if isinstance(inner, ast.Call) and _provider_kind(inner) is not None:
                    yield inner, f"{node.name}.{name}"


def _provider_kind(call: ast.Call) -> str | None:
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "providers"
    ):
        return func.attr
    return None


def _mutations_of(call: ast.Call) -> Iterator[tuple[str, str]]:
    """(operator, detail) pairs applicable to one provider call."""
    kind = _provider_kind(call) or ""
    if kind in LIFETIMES and not _builds_a_plain_value(call):
        yield "lifetime", f"{kind}->{LIFETIMES[kind]}"
    yield from _argument_mutations(call, kind)
    for kw in call.keywords:
        if isinstance(kw.value, ast.Attribute) and kw.value.attr == "provider":
            yield "instance", f"{kw.arg}"
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            keys = [key.value for key in arg.keys if isinstance(key, ast.Constant)]
            yield from (("entry", key) for key in keys if isinstance(key, str))


def _argument_mutations(call: ast.Call, kind: str) -> Iterator[tuple[str, str]]:
    """Dropped arguments (never the provided callable itself) and swapped neighbours."""
    first_kept = 1 if kind in CALLABLE_FIRST else 0
    for index in range(first_kept, len(call.args)):
        yield "drop-arg", f"arg{index}"
    keywords = [kw.arg for kw in call.keywords if kw.arg is not None]
    for name in keywords:
        if not (kind == "Dependency" and name == "instance_of"):
            yield "drop-arg", name
    swappable = [name for name in keywords if name != "instance_of"]
    for first, second in itertools.pairwise(swappable):
        yield "swap-args", f"{first}<->{second}"


def _builds_a_plain_value(call: ast.Call) -> bool:
    first = call.args[0] if call.args else None
    return isinstance(first, ast.Name) and first.id in VALUE_TYPES


def _apply(call: ast.Call, operator: str, detail: str) -> None:
    """Change `call` in place as (operator, detail) says."""
    if operator == "lifetime" and isinstance(call.func, ast.Attribute):
        call.func.attr = detail.split("->")[1]
    elif operator == "drop-arg" and detail.startswith("arg") and detail[3:].isdigit():
        del call.args[int(detail[3:])]
    elif operator == "drop-arg":
        call.keywords = [kw for kw in call.keywords if kw.arg != detail]
    elif operator == "swap-args":
        first, second = detail.split("<->")
        by_name = {kw.arg: kw for kw in call.keywords}
        by_name[first].value, by_name[second].value = by_name[second].value, by_name[first].value
    elif operator == "instance":
        keyword = next(kw for kw in call.keywords if kw.arg == detail)
        if isinstance(keyword.value, ast.Attribute):
            keyword.value = keyword.value.value
    elif operator == "entry":
        _drop_entry(call, detail)


def _drop_entry(call: ast.Call, key: str) -> None:
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            pairs = [
                (k, v)
                for k, v in zip(arg.keys, arg.values, strict=True)
                if not (isinstance(k, ast.Constant) and str(k.value) == key)
            ]
            arg.keys = [k for k, _ in pairs]
            arg.values = [v for _, v in pairs]


def enumerate_mutants(modules: tuple[str, ...] = CONTAINER_MODULES) -> list[Mutant]:
    """Every wiring mutant of the given container modules, in a stable order."""
    mutants: list[Mutant] = []
    for module in modules:
        tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
        for site, (call, target) in enumerate(_provider_calls(tree)):
            for operator, detail in _mutations_of(call):
                mutants.append(Mutant(module, site, operator, detail, call.lineno, target))
    return mutants


def mutated_source(mutant: Mutant) -> str:
    """The module's source with this one mutant applied."""
    tree = ast.parse((PACKAGE / mutant.module).read_text(encoding="utf-8"))
    call, _ = list(_provider_calls(tree))[mutant.site]
    _apply(call, mutant.operator, mutant.detail)
    return ast.unparse(ast.fix_missing_locations(tree))


# Not pytest plugins (hypothesis, pytest_asyncio): pytest must import those itself.
PRELOADED = (
    "pytest",
    "_pytest.python",
    "pydantic",
    "pydantic_settings",
    "httpx",
    "structlog",
    "dependency_injector.containers",
    "dependency_injector.providers",
    "sqlalchemy",
    "sqlalchemy.ext.asyncio",
    "aiosqlite",
    "platformdirs",
)
SURVIVED_CODES = (0, 5)  # pytest: all passed / nothing collected
WRONG_COPY = 99  # the tests imported chatscope from somewhere else than the mutated copy


def preload() -> None:
    """Import the heavy third-party modules once, so that each forked test run starts warm.

    chatscope itself must not be imported here: each run imports its own mutated copy.
    """
    sys.dont_write_bytecode = True  # a restored file of the same size must never hit a stale .pyc
    for name in PRELOADED:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    if any(name == "chatscope" or name.startswith("chatscope.") for name in sys.modules):
        raise SystemExit("preloading imported chatscope; the mutants would not be seen")


class Workspace:
    """A private copy of the package that one worker mutates, one module at a time."""

    def __init__(self, base: Path, index: int) -> None:
        self.path = base / f"worker-{index}"
        self.log = base / f"worker-{index}.log"
        shutil.copytree(PACKAGE, self.path / "chatscope", ignore=_no_caches)

    def run_tests(self, tests: tuple[str, ...], timeout: float) -> str:
        """Run the tests on this copy in a forked process: "killed", "timeout" or "survived"."""
        pid = os.fork()
        if pid == 0:  # the test process: never returns
            _run_pytest_and_exit(self.path, self.log, tests, timeout)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return "timeout" if os.WTERMSIG(status) == signal.SIGALRM else "killed"
        code = os.WEXITSTATUS(status)
        if code == WRONG_COPY:
            raise SystemExit(f"the tests did not import the mutated copy; see {self.log}")
        return "survived" if code in SURVIVED_CODES else "killed"

    def run(self, mutant: Mutant, tests: tuple[str, ...], timeout: float) -> Outcome:
        """Apply the mutant, run the tests (stopping at the first failure), restore."""
        target = self.path / "chatscope" / mutant.module
        original = target.read_text(encoding="utf-8")
        target.write_text(mutated_source(mutant), encoding="utf-8")
        started = time.monotonic()
        try:
            status = self.run_tests(tests, timeout)
        finally:
            target.write_text(original, encoding="utf-8")
        return Outcome(mutant, status, time.monotonic() - started)


def _run_pytest_and_exit(copy: Path, log: Path, tests: tuple[str, ...], timeout: float) -> NoReturn:
    """In the forked child: import path = the copy, output to the log, exit with pytest's code."""
    code = 98
    try:
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        signal.alarm(max(1, math.ceil(timeout)))
        source = (ROOT / "src").resolve()
        sys.path[:] = [str(copy)] + [p for p in sys.path if Path(p or ".").resolve() != source]
        # Test processes of their own (the CLI tests) must import the copy too.
        os.environ["PYTHONPATH"] = str(copy)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.chdir(ROOT)
        import pytest

        # This process is a fork of one that has imported chatscope (and with it anyio), so
        # pytest cannot rewrite the asserts of that plugin: a warning, not a test failure.
        quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *quiet, *tests]))
        imported = sys.modules.get("chatscope")
        if imported is None or not Path(str(imported.__file__)).is_relative_to(copy):
            code = WRONG_COPY
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _no_caches(directory: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def _worker(
    workspace: Workspace, mutants: list[Mutant], tests: tuple[str, ...], timeout: float
) -> NoReturn:
    """A forked worker: run its share of mutants, one JSON line per outcome on its result file."""
    code = 1
    try:
        with (workspace.path.parent / f"{workspace.path.name}.jsonl").open("w") as results:
            for mutant in mutants:
                outcome = workspace.run(mutant, tests, timeout)
                _print_outcome(outcome)
                results.write(json.dumps(asdict(mutant) | {"status": outcome.status}) + "\n")
                results.flush()
        code = 0
    finally:
        os._exit(code)


def run_all(mutants: list[Mutant], jobs: int) -> list[Outcome]:
    """Check the tests pass unmutated, then run every mutant on `jobs` forked workers."""
    tests = tuple(test for test in TESTS if (ROOT / test).exists())
    preload()
    with tempfile.TemporaryDirectory(prefix="chatscope-wiring-") as temporary:
        base = Path(temporary)
        workspaces = [Workspace(base, index) for index in range(jobs)]
        started = time.monotonic()
        if workspaces[0].run_tests(tests, PER_MUTANT_TIMEOUT) != "survived":
            print(workspaces[0].log.read_text(encoding="utf-8")[-4000:], file=sys.stderr)
            raise SystemExit("the wiring tests fail without any mutant; fix them first")
        timeout = max(30.0, (time.monotonic() - started) * 5)
        print(f"clean run: {time.monotonic() - started:.1f}s; per-mutant timeout {timeout:.0f}s")
        sys.stdout.flush()
        pids = []
        for index, workspace in enumerate(workspaces):
            pid = os.fork()
            if pid == 0:
                _worker(workspace, mutants[index::jobs], tests, timeout)
            pids.append(pid)
        failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        if failed:
            raise SystemExit(f"{len(failed)} mutation worker(s) failed")
        outcomes = _read_outcomes(base, jobs)
    order = {mutant.name: index for index, mutant in enumerate(mutants)}
    return sorted(outcomes, key=lambda outcome: order[outcome.mutant.name])


def _read_outcomes(base: Path, jobs: int) -> list[Outcome]:
    outcomes = []
    for index in range(jobs):
        for line in (base / f"worker-{index}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            status = row.pop("status")
            outcomes.append(Outcome(Mutant(**row), status, 0.0))
    return outcomes


def _print_outcome(outcome: Outcome) -> None:
    mutant = outcome.mutant
    print(
        f"{outcome.status:8} {outcome.seconds:5.1f}s {mutant.module}:{mutant.line} "
        f"{mutant.target} {mutant.operator} {mutant.detail}",
        flush=True,
    )


def main() -> int:
    """Enumerate (and unless --list, run) the wiring mutants; print and optionally save them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the outcomes to this file")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument(
        "--module", action="append", help="a container module, e.g. containers/runtime.py"
    )
    args = parser.parse_args()
    mutants = enumerate_mutants(tuple(args.module) if args.module else CONTAINER_MODULES)
    if args.list:
        for mutant in mutants:
            print(
                f"{mutant.module}:{mutant.line} {mutant.target} {mutant.operator} {mutant.detail}"
            )
        print(f"{len(mutants)} wiring mutants")
        return 0
    outcomes = run_all(mutants, max(1, args.jobs))
    killed = sum(outcome.status != "survived" for outcome in outcomes)
    print(f"wiring mutants: {killed} of {len(outcomes)} killed")
    if args.json is not None:
        rows = [asdict(outcome.mutant) | {"status": outcome.status} for outcome in outcomes]
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
