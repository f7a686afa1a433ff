"""Mutation testing of chatscope's critical modules: all of them, or those a change touches.

Modules with function bodies run under mutmut (`[tool.mutmut]` in pyproject.toml lists them
in `only_mutate`, with the test files that exercise them); the declarative containers run
under `scripts/mutation_wiring.py`. A module passes when its kill rate - mutants killed or
timed out, over all its mutants - is at least `--minimum` (0.80). Every mutant of a selected
module is re-run each time, so a result always reflects the current tests.

    uv run python scripts/mutation.py                      # every critical module (make mutation)
    uv run python scripts/mutation.py --changed-since auto --budget 300        # what CI runs
    uv run python scripts/mutation.py --module src/chatscope/services/auth.py
    uv run python scripts/mutation.py --report             # rates of the last run, no run

With `--changed-since`, a module is selected when its file changed since that git revision
(`auto`: the merge-base with origin/main, else the previous commit), including uncommitted
and untracked files, or when a changed test file imports it. Modules are taken cheapest
first while their estimated cost fits `--budget` seconds; the rest are listed as deferred.
When nothing critical changed, the cheapest module runs as a canary, so the tooling itself is
exercised on every CI run. Working files live in `mutants/` (ignored by git).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
WIRING_RESULTS = MUTANTS / "wiring.json"
CONTAINERS = (
    "src/chatscope/containers/adapters.py",
    "src/chatscope/containers/application.py",
    "src/chatscope/containers/runtime.py",
)
WIRING_TEST_MARKERS = ("chatscope.containers", "chatscope.testing", "build_test_app")
# Rough wall-clock seconds of a full run of each module on a 2-core machine, used to fit CI's
# budget; a module not listed costs DEFAULT_COST.
COSTS = {
    "src/chatscope/services/auth.py": 60,
    "src/chatscope/services/scopes.py": 90,
    "src/chatscope/services/runtime.py": 120,
    "src/chatscope/services/retry.py": 200,
    "src/chatscope/services/compression.py": 200,
    "src/chatscope/adapters/sql_history.py": 250,
    "src/chatscope/containers/adapters.py": 200,
    "src/chatscope/containers/application.py": 150,
    "src/chatscope/containers/runtime.py": 200,
}
DEFAULT_COST = 150
# Where only part of a module is critical, the mutant names (globs after the module's dotted
# name) that make up that part. The SQL store's commit path is `SqlHistoryStore` and what it
# writes and reads back with; `SessionCatalog` (listing sessions for the CLI) is left out.
SCOPES = {
    "src/chatscope/adapters/sql_history.py": (
        "xǁSqlHistoryStoreǁ*",
        "xǁ_Viewǁ*",
        "x__retrying_creation__*",
        "x__row__*",
        "x__turn_numbers__*",
        "x_session_title__*",
        "x__read_messages__*",
        "x__database_failures__*",
    ),
}
KILLED_CODES = frozenset({1, 3, 36, 37, -24, 24, 152, 255, -11, -9})  # killed, timeout, crash
UNCHECKED = None


@dataclass(frozen=True, slots=True)
class ModuleResult:
    """One module's mutants: how many, how many killed, and the survivors' names."""

    path: str
    total: int
    killed: int
    survivors: tuple[str, ...]

    @property
    def rate(self) -> float:
        """Killed over all mutants (1.0 when a module has none)."""
        return self.killed / self.total if self.total else 1.0


def mutmut_modules() -> tuple[str, ...]:
    """The function-bodied critical modules: `only_mutate` of `[tool.mutmut]`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return tuple(config["tool"]["mutmut"]["only_mutate"])


def critical_modules() -> tuple[str, ...]:
    """Every module under mutation testing, existing files only."""
    return tuple(path for path in (*mutmut_modules(), *CONTAINERS) if (ROOT / path).exists())


def _dotted(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def mutant_patterns(module: str) -> list[str]:
    """The mutmut name patterns of a module's critical part (all of it unless scoped)."""
    return [f"{_dotted(module)}.{scope}" for scope in SCOPES.get(module, ("*",))]


# --- which modules ----------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    result = subprocess.run(  # noqa: S603 - fixed git arguments
        ["git", *args],  # noqa: S607 - git from PATH, like any developer tool
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def resolve_base(requested: str) -> str | None:
    """The revision to compare with: as given, or for "auto" the merge-base / previous commit."""
    if requested != "auto":
        return requested
    head = _git("rev-parse", "HEAD")
    for upstream in ("origin/main", "origin/master"):
        base = _git("merge-base", "HEAD", upstream)
        if base and base != head:
            return base
    return _git("rev-parse", "HEAD~1")


def changed_files(base: str) -> set[str]:
    """Files changed since `base`: committed, uncommitted and untracked."""
    diff = _git("diff", "--name-only", base) or ""
    untracked = _git("ls-files", "--others", "--exclude-standard") or ""
    return {line for line in (diff + "\n" + untracked).splitlines() if line}


def touched_modules(changed: set[str], modules: Iterable[str]) -> list[str]:
    """Modules whose file changed, or that a changed test file imports."""
    tests = [ROOT / path for path in changed if path.startswith("tests/") and path.endswith(".py")]
    texts = [path.read_text(encoding="utf-8") for path in tests if path.exists()]
    selected = []
    for module in modules:
        markers = WIRING_TEST_MARKERS if module in CONTAINERS else (_dotted(module),)
        if module in changed or any(marker in text for text in texts for marker in markers):
            selected.append(module)
    return selected


def fit_budget(modules: list[str], budget: float) -> tuple[list[str], list[str]]:
    """Cheapest first, as many as fit `budget` seconds; (selected, deferred)."""
    selected: list[str] = []
    spent = 0.0
    for module in sorted(modules, key=lambda path: COSTS.get(path, DEFAULT_COST)):
        cost = COSTS.get(module, DEFAULT_COST)
        if spent + cost <= budget or not selected:
            selected.append(module)
            spent += cost
    return selected, [module for module in modules if module not in selected]


# --- running ----------------------------------------------------------------------------------


def run_mutmut(modules: list[str], jobs: int, timeout: float | None) -> None:
    """Re-run every mutant of these modules with mutmut (its output goes to mutants/)."""
    if not modules:
        return
    MUTANTS.mkdir(exist_ok=True)
    stale_tests = MUTANTS / "tests"
    if stale_tests.exists():  # mutmut re-copies tests/, but never deletes removed files
        subprocess.run(["rm", "-rf", str(stale_tests)], check=True)  # noqa: S603, S607
    for module in modules:
        # A module copied unmutated by an earlier run (before it was listed in only_mutate)
        # looks "already mutated" to mutmut, which then makes no mutant for it; and the test
        # map mutmut keeps knows no test of it. Drop both so that they are made afresh.
        if not (MUTANTS / (module + ".meta")).exists():
            (MUTANTS / module).unlink(missing_ok=True)
            (MUTANTS / "mutmut-stats.json").unlink(missing_ok=True)
    patterns = [pattern for module in modules for pattern in mutant_patterns(module)]
    log = MUTANTS / "mutmut-run.log"
    command = ["mutmut", "run", "--max-children", str(jobs), *patterns]
    print(f"mutmut: {len(modules)} module(s); log in {log.relative_to(ROOT)}", flush=True)
    with log.open("w", encoding="utf-8") as output:
        finished = _run_bounded(command, timeout, stdout=output, stderr=subprocess.STDOUT)
    if finished.returncode != 0:
        print(_tail(log), file=sys.stderr)
        raise SystemExit(f"mutmut failed (exit {finished.returncode}); see {log}")


class TimeLimitError(Exception):
    """The bounded run's hard time limit passed before its mutants were all run."""


def _run_bounded(
    command: list[str], timeout: float | None, **streams: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run `command` in its own process group; past `timeout`, stop the whole group.

    mutmut forks workers: stopping only the parent would leave them running.
    """
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, **streams)  # noqa: S603
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise TimeLimitError(f"{command[0]} passed its limit of {timeout:.0f} s") from None
    return subprocess.CompletedProcess(command, returncode)


def _tail(log: Path, lines: int = 30) -> str:
    """The end of a log, spinner redraws (carriage returns) collapsed to their last state."""
    text = log.read_text(encoding="utf-8", errors="replace")
    shown = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(shown[-lines:])


def run_wiring(modules: list[str], jobs: int, timeout: float | None) -> None:
    """Run the wiring mutants of these container modules; outcomes go to mutants/wiring.json."""
    if not modules:
        return
    MUTANTS.mkdir(exist_ok=True)
    command = [sys.executable, str(ROOT / "scripts" / "mutation_wiring.py"), "--jobs", str(jobs)]
    for module in modules:
        command += ["--module", module.removeprefix("src/chatscope/")]
    fresh = MUTANTS / "wiring-last.json"
    command += ["--json", str(fresh)]
    print(f"wiring: {len(modules)} container module(s)", flush=True)
    finished = _run_bounded(command, timeout)
    if finished.returncode != 0:
        raise SystemExit(f"the wiring mutation run failed (exit {finished.returncode})")
    _merge_wiring(fresh, modules)


def _merge_wiring(fresh: Path, modules: list[str]) -> None:
    """Replace the stored outcomes of these modules by the fresh ones, keep the others."""
    rows = json.loads(fresh.read_text(encoding="utf-8"))
    if WIRING_RESULTS.exists():
        rerun = {module.removeprefix("src/chatscope/") for module in modules}
        kept = json.loads(WIRING_RESULTS.read_text(encoding="utf-8"))
        rows = [row for row in kept if row["module"] not in rerun] + rows
    WIRING_RESULTS.write_text(json.dumps(rows, indent=1), encoding="utf-8")


# --- reporting --------------------------------------------------------------------------------


def mutmut_result(module: str) -> ModuleResult | None:
    """A module's outcome from mutmut's data in mutants/, or None before any run."""
    meta = MUTANTS / (module + ".meta")
    if not meta.exists():
        return None
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    patterns = mutant_patterns(module)
    codes = {
        name: code
        for name, code in codes.items()
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    }
    killed = sum(code in KILLED_CODES for code in codes.values())
    survivors = tuple(sorted(name for name, code in codes.items() if code not in KILLED_CODES))
    return ModuleResult(module, len(codes), killed, survivors)


def wiring_results() -> dict[str, ModuleResult]:
    """Each container module's outcome from the last wiring run."""
    if not WIRING_RESULTS.exists():
        return {}
    rows = json.loads(WIRING_RESULTS.read_text(encoding="utf-8"))
    results: dict[str, ModuleResult] = {}
    for module in CONTAINERS:
        mine = [row for row in rows if f"src/chatscope/{row['module']}" == module]
        if mine:
            survivors = tuple(
                f"{row['module']}:{row['line']} {row['target']} {row['operator']} {row['detail']}"
                for row in mine
                if row["status"] == "survived"
            )
            killed = len(mine) - len(survivors)
            results[module] = ModuleResult(module, len(mine), killed, survivors)
    return results


def report(modules: Iterable[str], minimum: float) -> bool:
    """Print each module's kill rate and survivors; True when every module is at the minimum."""
    wiring = wiring_results()
    passed = True
    for module in modules:
        result = wiring.get(module) if module in CONTAINERS else mutmut_result(module)
        if result is None:
            print(f"  {module}: no results (not run yet)")
            passed = False
            continue
        verdict = "ok" if result.rate >= minimum else f"BELOW {minimum:.0%}"
        print(f"  {module}: {result.killed}/{result.total} killed = {result.rate:.1%} {verdict}")
        for survivor in result.survivors:
            print(f"      survived: {survivor}")
        passed = passed and result.rate >= minimum
    return passed


def choose_modules(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(modules to run, deferred modules) for the command line given."""
    every = list(critical_modules())
    if args.module:
        return [module for module in every if module in args.module], []
    if args.changed_since is None:
        return every, []
    base = resolve_base(args.changed_since)
    touched = every if base is None else touched_modules(changed_files(base), every)
    print(f"changed since {base or '(no base: everything)'}: {touched or 'no critical module'}")
    if not touched:
        canary = min(every, key=lambda path: COSTS.get(path, DEFAULT_COST))
        print(f"running the cheapest module as a canary: {canary}")
        return [canary], []
    return fit_budget(touched, args.budget)


def main() -> int:
    """Run the selected modules, then gate on each one's kill rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="a module path (repeatable)")
    parser.add_argument("--changed-since", help="a git revision, or 'auto'")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds, with --changed-since")
    parser.add_argument("--minimum", type=float, default=0.80)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="only report the last results")
    args = parser.parse_args()
    selected, deferred = choose_modules(args)
    started = time.monotonic()
    if not args.report:
        hard_limit = 3 * args.budget if args.changed_since is not None else None
        try:
            run_mutmut([m for m in selected if m not in CONTAINERS], args.jobs, hard_limit)
            run_wiring([m for m in selected if m in CONTAINERS], args.jobs, hard_limit)
        except TimeLimitError as reached:
            # A bounded run gates only what it finished; an unfinished module has no figure.
            print(f"mutation: {reached}; not gated this run: {', '.join(selected)}")
            print("run `make mutation` for the figures")
            return 0
    print(f"mutation kill rates (minimum {args.minimum:.0%}):")
    passed = report(selected, args.minimum)
    for module in deferred:
        print(f"  {module}: deferred (over the --budget); run `make mutation`")
    print(f"mutation testing took {time.monotonic() - started:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
