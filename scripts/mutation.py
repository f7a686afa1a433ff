"""Mutation testing of chatscope's critical modules: all of them, or those a change touches.

Modules with function bodies run under mutmut (`[tool.mutmut]` in pyproject.toml lists them
in `only_mutate`, with the test files that exercise them); the declarative containers run
under `scripts/mutation_wiring.py`. A module passes when its kill rate - mutants killed or
timed out, over all its mutants (or over its sample) - is at least `--minimum` (0.80). Every
mutant of a selected module (or sample) is re-run each time, so a result always reflects the
current tests.

    uv run python scripts/mutation.py                      # every critical module (make mutation)
    uv run python scripts/mutation.py --changed-since auto --budget 240        # what CI runs
    uv run python scripts/mutation.py --module src/chatscope/services/runtime/auth.py
    uv run python scripts/mutation.py --report             # rates of the last run, no run

With `--changed-since`, a module is selected when its file changed since that git revision
(`auto`: the merge-base with origin/main, else the previous commit), including uncommitted
and untracked files, or when a changed test file imports it. Every selected mutmut module is
gated on a sample of its mutants sized to fit `--budget` seconds (at least MIN_SAMPLE each):
first the mutants of the functions the change touched, then a random draw of the others,
seeded by the module and the commit so that a run can be repeated. Container modules run
whole, cheapest first, while their estimated cost fits what is left; the rest are listed as
deferred. When nothing critical changed, a canary sample of MIN_SAMPLE mutants of one mutmut
module, chosen by the commit, is gated instead, so the tooling runs on every CI run and the
modules take turns. Working files live in `mutants/` (ignored by git).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
WIRING_RESULTS = MUTANTS / "wiring.json"
CONTAINERS = (
    "src/chatscope/containers/providers.py",
    "src/chatscope/containers/storage.py",
    "src/chatscope/containers/tools.py",
    "src/chatscope/containers/application.py",
    "src/chatscope/containers/runtime.py",
)
WIRING_TEST_MARKERS = ("chatscope.containers", "chatscope.testing", "build_test_app")
# Rough wall-clock seconds of a wiring run of each container module on a 2-core machine, used
# to fit what CI's budget leaves after the mutmut samples; a module not listed costs
# DEFAULT_COST.
COSTS = {
    "src/chatscope/containers/providers.py": 150,
    "src/chatscope/containers/storage.py": 100,
    "src/chatscope/containers/tools.py": 60,
    "src/chatscope/containers/application.py": 150,
    "src/chatscope/containers/runtime.py": 200,
}
DEFAULT_COST = 150
# A bounded run's mutmut part: a fixed start (generating the mutants, mapping the tests to the
# functions they reach, the clean and forced-fail runs; about 90 s here), then per mutant with
# two workers from 0.2 s (compression.py) to 2 s (retry.py, whose mutants often time out); a
# full run here averaged 1.1 s a mutant (1,553 s for 1,410).
MUTMUT_START_SECONDS = 90
SECONDS_PER_MUTANT = 1.1
# Fewer mutants than this say too little about a module's tests to gate on.
MIN_SAMPLE = 40
# Where only part of a module is critical, the mutant names (globs after the module's dotted
# name) that make up that part. The SQL store's commit path is `SqlHistoryStore` and what it
# writes and reads back with; `SessionCatalog` (listing sessions for the CLI) is left out.
SCOPES = {
    "src/chatscope/adapters/storage/sql_history.py": (
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


def fit_budget(
    modules: list[str], budget: float, *, at_least_one: bool = True
) -> tuple[list[str], list[str]]:
    """Cheapest first, as many as fit `budget` seconds (and the cheapest one in any case
    when `at_least_one`); (selected, deferred)."""
    selected: list[str] = []
    spent = 0.0
    for module in sorted(modules, key=lambda path: COSTS.get(path, DEFAULT_COST)):
        cost = COSTS.get(module, DEFAULT_COST)
        if spent + cost <= budget or (at_least_one and not selected):
            selected.append(module)
            spent += cost
    return selected, [module for module in modules if module not in selected]


# --- which mutants ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The mutants of one module a bounded run gates on, and how they were drawn."""

    module: str
    names: tuple[str, ...]
    from_changes: int
    of_total: int


def mutant_names(module: str) -> list[str]:
    """Every mutant mutmut makes of the module's critical part, by its full name.

    mutmut's own generator makes them (in-process, without running anything), so the names
    are exactly those `mutmut run` will know.
    """
    from mutmut.mutation.file_mutation import mutate_file_contents  # only a sampling run needs it

    source = (ROOT / module).read_text(encoding="utf-8")
    made = mutate_file_contents(module, source).mutant_names
    patterns = mutant_patterns(module)
    names = (f"{_dotted(module)}.{name}" for name in made)
    return [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def function_of(mutant: str) -> str:
    """The mutmut function name a mutant belongs to (`x_name` or `xǁClassǁmethod`)."""
    return mutant.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]


def function_spans(source: str) -> dict[str, range]:
    """The lines of each function and method, decorators included, by mutmut function name."""
    spans: dict[str, range] = {}
    for node in ast.parse(source).body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        for member in members:
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                prefix = f"xǁ{node.name}ǁ" if isinstance(node, ast.ClassDef) else "x_"
                first = min([member.lineno, *(d.lineno for d in member.decorator_list)])
                spans[prefix + member.name] = range(first, (member.end_lineno or first) + 1)
    return spans


_HUNK = re.compile(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def changed_lines(diff: str) -> set[int]:
    """The new-side line numbers a `git diff -U0` touches (a deletion marks the line before)."""
    lines: set[int] = set()
    for match in _HUNK.finditer(diff):
        start, count = int(match[1]), int(match[2] if match[2] is not None else "1")
        lines.update(range(start, start + max(count, 1)))
    return lines


def changed_functions(module: str, base: str | None, changed: set[str]) -> set[str]:
    """The functions of `module` whose lines changed since `base` (all, for a new file)."""
    if module not in changed:
        return set()
    spans = function_spans((ROOT / module).read_text(encoding="utf-8"))
    tracked = base is not None and _git("cat-file", "-e", f"{base}:{module}") is not None
    if not tracked:
        return set(spans)
    lines = changed_lines(_git("diff", "-U0", str(base), "--", module) or "")
    return {name for name, span in spans.items() if lines.intersection(span)}


def draw_sample(
    names: Sequence[str], changed: set[str], size: int, seed: str
) -> tuple[tuple[str, ...], int]:
    """(the sample, how many of it come from changed functions), at most `size` mutants.

    Mutants of changed functions come first; the rest of the sample is drawn at random from
    the other mutants, with `seed`.
    """
    rng = random.Random(seed)  # noqa: S311 - sampling, not cryptography
    touched = [name for name in names if function_of(name) in changed]
    if len(touched) >= size:
        return tuple(sorted(rng.sample(touched, size))), size
    others = [name for name in names if function_of(name) not in changed]
    drawn = rng.sample(others, min(size - len(touched), len(others)))
    return tuple(sorted([*touched, *drawn])), len(touched)


def sample_size(budget: float, modules: int) -> int:
    """Mutants per module that fit `budget` seconds of mutmut (at least MIN_SAMPLE)."""
    affordable = (budget - MUTMUT_START_SECONDS) / SECONDS_PER_MUTANT
    return max(MIN_SAMPLE, int(affordable / max(modules, 1)))


# --- running ----------------------------------------------------------------------------------


def run_mutmut(
    modules: list[str],
    jobs: int,
    timeout: float | None,
    samples: dict[str, Sample] | None = None,
) -> None:
    """Re-run the mutants of these modules with mutmut: all, or a module's sample when given
    (its output goes to mutants/)."""
    if not modules:
        return
    samples = samples or {}
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
    patterns = [
        pattern
        for module in modules
        for pattern in (samples[module].names if module in samples else mutant_patterns(module))
    ]
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


def mutmut_result(module: str, only: Iterable[str] | None = None) -> ModuleResult | None:
    """A module's outcome from mutmut's data in mutants/ (of the mutants `only` names, when
    given), or None before any run."""
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
    if only is not None:
        wanted = set(only)
        codes = {name: code for name, code in codes.items() if name in wanted}
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


def report(
    modules: Iterable[str], minimum: float, samples: dict[str, Sample] | None = None
) -> bool:
    """Print each module's kill rate and survivors; True when every module is at the minimum.

    A sampled module is judged on its sample.
    """
    wiring = wiring_results()
    samples = samples or {}
    passed = True
    for module in modules:
        sample = samples.get(module)
        if module in CONTAINERS:
            result = wiring.get(module)
        else:
            result = mutmut_result(module, sample.names if sample else None)
        if result is None:
            print(f"  {module}: no results (not run yet)")
            passed = False
            continue
        verdict = "ok" if result.rate >= minimum else f"BELOW {minimum:.0%}"
        drawn = (
            f" (a sample of {len(sample.names)} of {sample.of_total} mutants,"
            f" {sample.from_changes} of them in changed functions)"
            if sample
            else ""
        )
        print(
            f"  {module}: {result.killed}/{result.total} killed = {result.rate:.1%}"
            f" {verdict}{drawn}"
        )
        for survivor in result.survivors:
            print(f"      survived: {survivor}")
        passed = passed and result.rate >= minimum
    return passed


@dataclass(frozen=True, slots=True)
class Plan:
    """What one invocation runs: whole modules, sampled modules, and the deferred rest."""

    selected: list[str]
    deferred: list[str]
    samples: dict[str, Sample]


def choose_modules(args: argparse.Namespace) -> Plan:
    """What to run for the command line given."""
    every = list(critical_modules())
    if args.module:
        return Plan([module for module in every if module in args.module], [], {})
    if args.changed_since is None:
        return Plan(every, [], {})
    base = resolve_base(args.changed_since)
    head = _git("rev-parse", "HEAD") or "no-commit"  # seeds the samples
    changed = changed_files(base) if base is not None else set(every)
    touched = touched_modules(changed, every)
    print(f"changed since {base or '(no base: everything)'}: {touched or 'no critical module'}")
    if not touched:
        return canary_plan(head)
    return bounded_plan(touched, base, changed, args.budget, head)


def canary_module(head: str, modules: Sequence[str]) -> str:
    """The module commit `head` checks when it changed none: a hash of the commit picks it."""
    ordered = sorted(modules)
    return ordered[int(hashlib.sha256(head.encode()).hexdigest(), 16) % len(ordered)]


def canary_plan(head: str) -> Plan:
    """Nothing critical changed: a sample of MIN_SAMPLE mutants of one mutmut module, chosen by
    the commit, so that successive runs check every module in turn and the sampling runs too."""
    canary = canary_module(head, mutmut_modules())
    print(f"no critical module changed; canary: {MIN_SAMPLE} mutants of {canary}")
    return Plan([canary], [], {canary: sample_of(canary, set(), MIN_SAMPLE, head)})


def sample_of(module: str, changed: set[str], size: int, head: str) -> Sample:
    """`size` mutants of `module`, those of the `changed` functions first, seeded by `head`."""
    names = mutant_names(module)
    picked, from_changes = draw_sample(names, changed, size, seed=f"{module}@{head}")
    return Sample(module, picked, from_changes, len(names))


def bounded_plan(
    touched: list[str], base: str | None, changed: set[str], budget: float, head: str
) -> Plan:
    """Every touched mutmut module sampled, and the touched containers that fit the rest."""
    sampled = [module for module in touched if module not in CONTAINERS]
    containers = [module for module in touched if module in CONTAINERS]
    reserved = MUTMUT_START_SECONDS + MIN_SAMPLE * SECONDS_PER_MUTANT * len(sampled)
    whole, deferred = fit_budget(
        containers, budget - reserved if sampled else budget, at_least_one=not sampled
    )
    left = budget - sum(COSTS.get(module, DEFAULT_COST) for module in whole)
    size = sample_size(left, len(sampled))
    samples = {
        module: sample_of(module, changed_functions(module, base, changed), size, head)
        for module in sampled
    }
    return Plan([*sampled, *whole], deferred, samples)


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
    plan = choose_modules(args)
    selected = plan.selected
    started = time.monotonic()
    if not args.report:
        hard_limit = 3 * args.budget if args.changed_since is not None else None
        try:
            run_mutmut(
                [m for m in selected if m not in CONTAINERS], args.jobs, hard_limit, plan.samples
            )
            run_wiring([m for m in selected if m in CONTAINERS], args.jobs, hard_limit)
        except TimeLimitError as reached:
            # A bounded run gates only what it finished; an unfinished module has no figure.
            print(f"mutation: {reached}; not gated this run: {', '.join(selected)}")
            print("run `make mutation` for the figures")
            return 0
    print(f"mutation kill rates (minimum {args.minimum:.0%}):")
    passed = report(selected, args.minimum, plan.samples)
    for module in plan.deferred:
        print(f"  {module}: deferred (over the --budget); run `make mutation`")
    print(f"mutation testing took {time.monotonic() - started:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
