# chatscope developer commands; each one is a gate CI runs too (see docs/testing.md).
.PHONY: test coverage properties contracts lint types mutation mutation-changed mutation-report ci

test:  ## the suite, as the README runs it
	uv run pytest

coverage:  ## the suite with line coverage of src/ (fails under 90%)
	uv run pytest --cov=chatscope --cov-report=term-missing:skip-covered --cov-fail-under=90

properties:  ## share of hypothesis property tests (fails under 30%)
	uv run python scripts/property_share.py --minimum 0.30

contracts:  ## import-layer contracts (the module-state scan runs in the suite)
	uv run lint-imports

lint:
	uv run ruff check .
	uv run ruff format --check .

types:
	uv run mypy

mutation:  ## full mutation run of every critical module (several minutes)
	uv run python scripts/mutation.py

mutation-changed:  ## what CI runs: samples of the critical modules changed since the merge-base
	uv run python scripts/mutation.py --changed-since auto --budget 240

mutation-report:  ## kill rates and survivors of the last run
	uv run python scripts/mutation.py --report

ci:  ## everything, as CI runs it
	.ci/run
