"""The "search" family: the tools that find files by glob pattern or lines by regex.

They share the confined directory walk and the glob segment matching, which is why they live
together and apart from the tools that read or write a single file. Blocking file IO runs in a
worker thread so a large search never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from chatscope.adapters.tools.arguments import (
    SNIFF_BYTES,
    capped_lines,
    check_names,
    declare,
    positive,
    require_directory,
    string_argument,
    string_schema,
)
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.errors import ToolError, WorkspaceEscapeError
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

__all__ = ["GlobTool", "SearchFileContentTool"]

_MAX_LINE_CHARS = 500


class GlobTool:
    """`glob`: files whose workspace path matches a pattern such as `**/*.py`."""

    __slots__ = ("_declaration", "_max_results", "_workspace")

    def __init__(self, workspace: Workspace, *, max_results: int = 500) -> None:
        self._workspace = workspace
        self._max_results = positive("max_results", max_results)
        self._declaration = declare(
            "glob",
            "Find files whose path matches a glob pattern, e.g. '**/*.py' (any depth) or "
            "'src/*.txt'. '*' and '?' match within one path segment; '**' matches any number "
            "of directories. Returns file paths relative to the workspace root, sorted, at "
            f"most {max_results}.",
            {
                "pattern": string_schema("Glob pattern relative to `path`, e.g. '**/*.md'."),
                "path": string_schema("Directory to search from; default the workspace root."),
            },
            required=("pattern",),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `glob`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Match the pattern in a worker thread."""
        check_names(arguments, self._declaration)
        pattern = string_argument(arguments, "pattern")
        segments = _pattern_segments(pattern)
        path = string_argument(arguments, "path", default=".")
        return await asyncio.to_thread(self._glob, pattern, segments, path)

    def _glob(self, pattern: str, segments: tuple[str, ...], raw_path: str) -> str:
        base = self._workspace.resolve(raw_path)
        require_directory(base, raw_path)
        found = sorted(
            self._workspace.display(path)
            for path in _walk_files(self._workspace, base, lambda parts: _prefix(segments, parts))
            if _segments_match(segments, path.relative_to(base).parts)
        )
        if not found:
            return f"No files match {pattern!r}."
        return capped_lines(found, self._max_results, "files")


class SearchFileContentTool:
    """`search_file_content`: lines matching a regex, so the model need not read every file."""

    __slots__ = ("_declaration", "_max_file_bytes", "_max_matches", "_workspace")

    def __init__(
        self, workspace: Workspace, *, max_matches: int = 200, max_file_bytes: int = 1024 * 1024
    ) -> None:
        self._workspace = workspace
        self._max_matches = positive("max_matches", max_matches)
        self._max_file_bytes = positive("max_file_bytes", max_file_bytes)
        self._declaration = declare(
            "search_file_content",
            "Search workspace files for lines matching a Python regular expression. Returns "
            "'path:line: text' for each match, paths relative to the workspace root. Binary "
            f"files and files over {max_file_bytes} bytes are skipped; at most {max_matches} "
            "matches are shown.",
            {
                "pattern": string_schema("Python regular expression, e.g. 'def \\w+\\('."),
                "path": string_schema("File or directory to search; default the root."),
                "include": string_schema("Only search files matching this glob, e.g. '*.py'."),
            },
            required=("pattern",),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `search_file_content`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Search in a worker thread."""
        check_names(arguments, self._declaration)
        regex = _compile(string_argument(arguments, "pattern"))
        path = string_argument(arguments, "path", default=".")
        include = string_argument(arguments, "include", default="")
        return await asyncio.to_thread(self._search, regex, path, include)

    def _search(self, regex: re.Pattern[str], raw_path: str, include: str) -> str:
        base = self._workspace.resolve(raw_path)
        if not base.exists():
            raise ToolError(f"no such file or directory: {raw_path!r}")
        matches: list[str] = []
        skipped = 0
        for path in sorted(self._candidates(base, include), key=self._workspace.display):
            lines = _file_lines(path, self._max_file_bytes)
            if lines is None:
                skipped += 1
                continue
            matches.extend(_matching(regex, lines, self._workspace.display(path)))
            if len(matches) > self._max_matches:
                break
        return self._render(matches, skipped, regex.pattern)

    def _candidates(self, base: Path, include: str) -> Iterator[Path]:
        if not base.is_dir():
            yield base
            return
        keep = _include_filter(include)
        for path in _walk_files(self._workspace, base, lambda _parts: True):
            if keep(path.relative_to(base).parts):
                yield path

    def _render(self, matches: list[str], skipped: int, pattern: str) -> str:
        lines = matches[: self._max_matches] or [f"No matches for {pattern!r}."]
        if len(matches) > self._max_matches:
            lines.append(
                f"[truncated: showing the first {self._max_matches} matches; "
                "narrow the pattern, path or include to see the rest]"
            )
        if skipped:
            lines.append(f"[skipped {skipped} binary, unreadable or oversized files]")
        return "\n".join(lines)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from exc


def _walk_files(
    workspace: Workspace, base: Path, enter: Callable[[tuple[str, ...]], bool]
) -> Iterator[Path]:
    """Files under `base`, following only symlinks that stay inside the root, each dir once."""
    visited = {base}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        current = Path(dirpath)
        parts = current.relative_to(base).parts
        dirnames[:] = [
            name
            for name in sorted(dirnames)
            if enter((*parts, name)) and _first_visit(workspace, current / name, visited)
        ]
        for name in sorted(filenames):
            path = current / name
            if not path.is_symlink() or workspace.contains(path):
                yield path


def _first_visit(workspace: Workspace, directory: Path, visited: set[Path]) -> bool:
    """Symlinked directories may loop or lead out; each real directory is walked once."""
    try:
        real = directory.resolve()
    except (OSError, RuntimeError):
        return False
    if real in visited or not real.is_relative_to(workspace.root):
        return False
    visited.add(real)
    return True


def _pattern_segments(pattern: str) -> tuple[str, ...]:
    """A glob's segments; a pattern that could climb out of its base is an escape attempt."""
    if "\0" in pattern:
        raise ToolError(f"pattern {pattern!r} contains a NUL byte")
    if pattern.startswith(("/", "\\")) or PurePosixPath(pattern).is_absolute():
        raise WorkspaceEscapeError(f"glob pattern {pattern!r} is absolute; use a relative one")
    segments = [segment for segment in pattern.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise WorkspaceEscapeError(f"glob pattern {pattern!r} may not contain '..'")
    if not segments:
        raise ToolError("glob pattern must not be empty")
    collapsed: list[str] = []
    for segment in segments:
        if not (segment == "**" and collapsed[-1:] == ["**"]):
            collapsed.append(segment)
    return tuple(collapsed)


def _segments_match(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_segments_match(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _segments_match(rest, parts[1:])


def _prefix(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether a directory at `parts` could hold a match, so the walk can skip the rest."""
    if not parts:
        return True
    if not pattern or (len(pattern) == 1 and pattern[0] != "**"):
        return False
    if pattern[0] == "**":
        return True
    return fnmatchcase(parts[0], pattern[0]) and _prefix(pattern[1:], parts[1:])


def _include_filter(include: str) -> Callable[[tuple[str, ...]], bool]:
    """`*.py` matches file names at any depth; a pattern with `/` matches the whole path."""
    if not include:
        return lambda _parts: True
    if "/" not in include:
        return lambda parts: fnmatchcase(parts[-1], include)
    segments = _pattern_segments(include)
    return lambda parts: _segments_match(segments, parts)


def _file_lines(path: Path, max_bytes: int) -> list[str] | None:
    """A searchable file's lines, or None when it is binary, oversized or unreadable."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:SNIFF_BYTES]:
        return None
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _matching(regex: re.Pattern[str], lines: list[str], shown: str) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        text = line.removesuffix("\r")
        if regex.search(text):
            yield f"{shown}:{number}: {_clip(text)}"


def _clip(text: str) -> str:
    if len(text) <= _MAX_LINE_CHARS:
        return text
    return text[:_MAX_LINE_CHARS] + " [line truncated]"
