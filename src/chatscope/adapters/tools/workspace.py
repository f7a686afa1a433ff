"""The built-in workspace file tools: what a chat's model may read, find, search and write.

Every path a model supplies goes through `Workspace.resolve`, which follows symlinks before
checking the root, so no tool can reach outside the workspace by `..`, an absolute path or a
link. Blocking file IO runs in a worker thread so a large search never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import IO, Any

from chatscope.errors import ConfigurationError, ToolError, WorkspaceEscapeError
from chatscope.services.frozen import deep_freeze
from chatscope.services.tools.ports import Tool, ToolDeclaration

__all__ = [
    "GlobTool",
    "ListDirectoryTool",
    "ReadFileTool",
    "SearchFileContentTool",
    "Workspace",
    "WriteFileTool",
    "build_workspace_tools",
]

_SNIFF_BYTES = 8 * 1024
_LINE_CHUNK = 64 * 1024
_MAX_LINE_CHARS = 500
_GLOB_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory a chat's tools are confined to; `root` is stored resolved."""

    root: Path

    def __post_init__(self) -> None:
        resolved = Path(self.root).resolve()
        if not resolved.is_dir():
            raise ConfigurationError(f"workspace root {self.root} is not an existing directory")
        object.__setattr__(self, "root", resolved)

    def resolve(self, relative: str) -> Path:
        """The real path `relative` names, refused unless it lies inside the root."""
        if "\0" in relative:
            raise ToolError(f"path {relative!r} contains a NUL byte")
        candidate = Path(relative) if relative else self.root
        try:
            resolved = (self.root / candidate).resolve()
        except (OSError, RuntimeError) as exc:
            raise ToolError(f"cannot resolve path {relative!r}: {exc}") from exc
        if not resolved.is_relative_to(self.root):
            raise WorkspaceEscapeError(
                f"path {relative!r} is outside the workspace root {self.root}"
            )
        return resolved

    def contains(self, path: Path) -> bool:
        """Whether `path`, with every symlink followed, lies inside the root."""
        try:
            return path.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):
            return False

    def display(self, path: Path) -> str:
        """`path` as the model should see it: relative to the root, with `/` separators."""
        return path.relative_to(self.root).as_posix()


def build_workspace_tools(root: Path) -> tuple[Tool, ...]:
    """The five workspace tools over `root`, in the order the model is told about them."""
    workspace = Workspace(root)
    return (
        ReadFileTool(workspace),
        ListDirectoryTool(workspace),
        GlobTool(workspace),
        SearchFileContentTool(workspace),
        WriteFileTool(workspace),
    )


class ReadFileTool:
    """`read_file`: a text file's content, optionally a line range, capped in bytes."""

    __slots__ = ("_declaration", "_max_bytes", "_workspace")

    def __init__(self, workspace: Workspace, *, max_bytes: int = 256 * 1024) -> None:
        self._workspace = workspace
        self._max_bytes = _positive("max_bytes", max_bytes)
        self._declaration = _declare(
            "read_file",
            "Read a UTF-8 text file from the workspace. Paths are relative to the workspace "
            "root. For a large file, pass `offset` (0-based line to start at) and `limit` "
            f"(number of lines). Output beyond {max_bytes} bytes is cut off with a note. "
            "Binary files are refused.",
            {
                "path": _string_schema("File path relative to the workspace root."),
                "offset": _integer_schema("0-based line number to start reading at.", 0),
                "limit": _integer_schema("Maximum number of lines to read.", 1),
            },
            required=("path",),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `read_file`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Read the file in a worker thread."""
        _check_names(arguments, self._declaration)
        path = _string(arguments, "path")
        offset = _integer(arguments, "offset", minimum=0) or 0
        limit = _integer(arguments, "limit", minimum=1)
        return await asyncio.to_thread(self._read, path, offset, limit)

    def _read(self, raw_path: str, offset: int, limit: int | None) -> str:
        path = self._workspace.resolve(raw_path)
        _require_file(path, raw_path)
        try:
            with path.open("rb") as handle:
                if b"\0" in handle.read(_SNIFF_BYTES):
                    raise ToolError(f"{raw_path!r} is a binary file; read_file reads text only")
                handle.seek(0)
                selection = _select_lines(handle, offset, limit, self._max_bytes)
        except OSError as exc:
            raise ToolError(f"cannot read {raw_path!r}: {exc.strerror or exc}") from exc
        return _render_selection(selection, offset, self._max_bytes)


class ListDirectoryTool:
    """`list_directory`: the names in one directory, so the model can find its way around."""

    __slots__ = ("_declaration", "_max_entries", "_workspace")

    def __init__(self, workspace: Workspace, *, max_entries: int = 500) -> None:
        self._workspace = workspace
        self._max_entries = _positive("max_entries", max_entries)
        self._declaration = _declare(
            "list_directory",
            "List the entries of a directory in the workspace, sorted by name. Directories "
            f"end with '/'. At most {max_entries} entries are shown.",
            {"path": _string_schema("Directory relative to the workspace root; default '.'.")},
            required=(),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `list_directory`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """List the directory in a worker thread."""
        _check_names(arguments, self._declaration)
        path = _string(arguments, "path", default=".")
        return await asyncio.to_thread(self._list, path)

    def _list(self, raw_path: str) -> str:
        path = self._workspace.resolve(raw_path)
        _require_directory(path, raw_path)
        try:
            with os.scandir(path) as scan:
                entries = sorted((entry.name, entry.is_dir()) for entry in scan)
        except OSError as exc:
            raise ToolError(f"cannot list {raw_path!r}: {exc.strerror or exc}") from exc
        if not entries:
            return "(empty directory)"
        lines = [name + "/" if is_dir else name for name, is_dir in entries]
        return _capped(lines, self._max_entries, "entries")


class GlobTool:
    """`glob`: files whose workspace path matches a pattern such as `**/*.py`."""

    __slots__ = ("_declaration", "_max_results", "_workspace")

    def __init__(self, workspace: Workspace, *, max_results: int = 500) -> None:
        self._workspace = workspace
        self._max_results = _positive("max_results", max_results)
        self._declaration = _declare(
            "glob",
            "Find files whose path matches a glob pattern, e.g. '**/*.py' (any depth) or "
            "'src/*.txt'. '*' and '?' match within one path segment; '**' matches any number "
            "of directories. Returns file paths relative to the workspace root, sorted, at "
            f"most {max_results}.",
            {
                "pattern": _string_schema("Glob pattern relative to `path`, e.g. '**/*.md'."),
                "path": _string_schema("Directory to search from; default the workspace root."),
            },
            required=("pattern",),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `glob`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Match the pattern in a worker thread."""
        _check_names(arguments, self._declaration)
        pattern = _string(arguments, "pattern")
        segments = _pattern_segments(pattern)
        path = _string(arguments, "path", default=".")
        return await asyncio.to_thread(self._glob, pattern, segments, path)

    def _glob(self, pattern: str, segments: tuple[str, ...], raw_path: str) -> str:
        base = self._workspace.resolve(raw_path)
        _require_directory(base, raw_path)
        found = sorted(
            self._workspace.display(path)
            for path in _walk_files(self._workspace, base, lambda parts: _prefix(segments, parts))
            if _segments_match(segments, path.relative_to(base).parts)
        )
        if not found:
            return f"No files match {pattern!r}."
        return _capped(found, self._max_results, "files")


class SearchFileContentTool:
    """`search_file_content`: lines matching a regex, so the model need not read every file."""

    __slots__ = ("_declaration", "_max_file_bytes", "_max_matches", "_workspace")

    def __init__(
        self, workspace: Workspace, *, max_matches: int = 200, max_file_bytes: int = 1024 * 1024
    ) -> None:
        self._workspace = workspace
        self._max_matches = _positive("max_matches", max_matches)
        self._max_file_bytes = _positive("max_file_bytes", max_file_bytes)
        self._declaration = _declare(
            "search_file_content",
            "Search workspace files for lines matching a Python regular expression. Returns "
            "'path:line: text' for each match, paths relative to the workspace root. Binary "
            f"files and files over {max_file_bytes} bytes are skipped; at most {max_matches} "
            "matches are shown.",
            {
                "pattern": _string_schema("Python regular expression, e.g. 'def \\w+\\('."),
                "path": _string_schema("File or directory to search; default the root."),
                "include": _string_schema("Only search files matching this glob, e.g. '*.py'."),
            },
            required=("pattern",),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `search_file_content`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Search in a worker thread."""
        _check_names(arguments, self._declaration)
        regex = _compile(_string(arguments, "pattern"))
        path = _string(arguments, "path", default=".")
        include = _string(arguments, "include", default="")
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


class WriteFileTool:
    """`write_file`: create or replace a text file, the one tool that changes the workspace."""

    __slots__ = ("_declaration", "_max_bytes", "_workspace")

    def __init__(self, workspace: Workspace, *, max_bytes: int = 1024 * 1024) -> None:
        self._workspace = workspace
        self._max_bytes = _positive("max_bytes", max_bytes)
        self._declaration = _declare(
            "write_file",
            "Write UTF-8 text to a file in the workspace, replacing it if it exists and "
            f"creating parent directories as needed. Content over {max_bytes} bytes is "
            "refused.",
            {
                "path": _string_schema("File path relative to the workspace root."),
                "content": _string_schema("The complete new content of the file."),
            },
            required=("path", "content"),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `write_file`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Write the file in a worker thread."""
        _check_names(arguments, self._declaration)
        path = _string(arguments, "path")
        data = _encoded(_string(arguments, "content"), self._max_bytes)
        return await asyncio.to_thread(self._write, path, data)

    def _write(self, raw_path: str, data: bytes) -> str:
        path = self._workspace.resolve(raw_path)
        if path.is_dir():
            raise ToolError(f"{raw_path!r} is a directory; write_file writes files only")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise ToolError(f"cannot write {raw_path!r}: {exc.strerror or exc}") from exc
        return f"Wrote {len(data)} bytes to {self._workspace.display(path)}."


# --- declarations and arguments -------------------------------------------------------------


def _declare(
    name: str, description: str, properties: dict[str, Any], *, required: tuple[str, ...]
) -> ToolDeclaration:
    parameters = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    return ToolDeclaration(name, description, deep_freeze(parameters))


def _string_schema(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _integer_schema(description: str, minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "description": description}


def _positive(name: str, value: int) -> int:
    """Caps come from configuration, so a bad one is a configuration error, not a tool error."""
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, got {value}")
    return value


def _check_names(arguments: Mapping[str, Any], declaration: ToolDeclaration) -> None:
    """Unknown arguments are refused so a misspelt option is not silently ignored."""
    unknown = sorted(set(arguments) - set(declaration.parameters["properties"]))
    if unknown:
        known = ", ".join(declaration.parameters["properties"])
        raise ToolError(f"unknown arguments {unknown}; {declaration.name} accepts: {known}")


def _string(arguments: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    """A string argument; a missing or null optional one takes its default."""
    value = arguments.get(name)
    if value is None:
        if default is None:
            raise ToolError(f"missing required argument {name!r}")
        return default
    if not isinstance(value, str):
        raise ToolError(f"argument {name!r} must be a string, got {type(value).__name__}")
    return value


def _integer(arguments: Mapping[str, Any], name: str, *, minimum: int) -> int | None:
    """An optional integer argument; models sometimes send `10.0`, which is accepted."""
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"argument {name!r} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ToolError(f"argument {name!r} must be at least {minimum}, got {value}")
    return value


def _encoded(content: str, max_bytes: int) -> bytes:
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(f"content cannot be encoded as UTF-8: {exc.reason}") from exc
    if len(data) > max_bytes:
        raise ToolError(f"content is {len(data)} bytes; write_file accepts at most {max_bytes}")
    return data


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from exc


# --- paths -----------------------------------------------------------------------------------


def _require_file(path: Path, raw_path: str) -> None:
    if not path.exists():
        raise ToolError(f"no such file: {raw_path!r}")
    if path.is_dir():
        raise ToolError(f"{raw_path!r} is a directory; use list_directory to see its entries")
    if not path.is_file():
        raise ToolError(f"{raw_path!r} is not a regular file")


def _require_directory(path: Path, raw_path: str) -> None:
    if not path.exists():
        raise ToolError(f"no such directory: {raw_path!r}")
    if not path.is_dir():
        raise ToolError(f"{raw_path!r} is not a directory")


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


# --- contents --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Selection:
    """Up to cap + 1 bytes of the selected lines, their full size, and lines seen."""

    head: bytes
    total: int
    lines: int


def _select_lines(handle: IO[bytes], offset: int, limit: int | None, cap: int) -> _Selection:
    """Stream the file in bounded chunks, so a huge file or line never fills memory."""
    head = bytearray()
    total = lines = 0
    unfinished = False
    end = None if limit is None else offset + limit
    while end is None or lines < end:
        piece = handle.readline(_LINE_CHUNK)
        if not piece:
            break
        if lines >= offset:
            total += len(piece)
            head += piece[: cap + 1 - len(head)]
        unfinished = not piece.endswith(b"\n")
        lines += not unfinished
    return _Selection(bytes(head), total, lines + unfinished)


def _render_selection(selection: _Selection, offset: int, cap: int) -> str:
    if selection.total > cap:
        cut = _char_boundary(selection.head, cap)
        text = selection.head[:cut].decode("utf-8", errors="replace")
        separator = "" if text.endswith("\n") or not text else "\n"
        return f"{text}{separator}[truncated: showing first {cut} of {selection.total} bytes]"
    if offset and selection.lines <= offset:
        return f"[offset {offset} is past the end of the file, which has {selection.lines} lines]"
    return selection.head.decode("utf-8", errors="replace")


def _char_boundary(data: bytes, cut: int) -> int:
    """Back off to the start of a UTF-8 character so truncation never splits one."""
    while 0 < cut < len(data) and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut


def _file_lines(path: Path, max_bytes: int) -> list[str] | None:
    """A searchable file's lines, or None when it is binary, oversized or unreadable."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:_SNIFF_BYTES]:
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


def _capped(lines: list[str], cap: int, noun: str) -> str:
    shown = lines[:cap]
    if len(lines) > cap:
        shown.append(f"[truncated: {len(lines) - cap} more {noun} not shown]")
    return "\n".join(shown)
