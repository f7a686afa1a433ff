"""The "files" family: the tools that read one file or list one directory for the model.

They share the bounded, streaming line selection that keeps a huge file or line from filling
memory, which no other family needs. Blocking file IO runs in a worker thread so a large read
never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chatscope.adapters.tools.arguments import (
    SNIFF_BYTES,
    capped_lines,
    check_names,
    declare,
    integer_argument,
    integer_schema,
    positive,
    require_directory,
    string_argument,
    string_schema,
)
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.errors import ToolError
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

__all__ = ["ListDirectoryTool", "ReadFileTool"]

_LINE_CHUNK = 64 * 1024


class ReadFileTool:
    """`read_file`: a text file's content, optionally a line range, capped in bytes."""

    __slots__ = ("_declaration", "_max_bytes", "_workspace")

    def __init__(self, workspace: Workspace, *, max_bytes: int = 256 * 1024) -> None:
        self._workspace = workspace
        self._max_bytes = positive("max_bytes", max_bytes)
        self._declaration = declare(
            "read_file",
            "Read a UTF-8 text file from the workspace. Paths are relative to the workspace "
            "root. For a large file, pass `offset` (0-based line to start at) and `limit` "
            f"(number of lines). Output beyond {max_bytes} bytes is cut off with a note. "
            "Binary files are refused.",
            {
                "path": string_schema("File path relative to the workspace root."),
                "offset": integer_schema("0-based line number to start reading at.", 0),
                "limit": integer_schema("Maximum number of lines to read.", 1),
            },
            required=("path",),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `read_file`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Read the file in a worker thread."""
        check_names(arguments, self._declaration)
        path = string_argument(arguments, "path")
        offset = integer_argument(arguments, "offset", minimum=0) or 0
        limit = integer_argument(arguments, "limit", minimum=1)
        return await asyncio.to_thread(self._read, path, offset, limit)

    def _read(self, raw_path: str, offset: int, limit: int | None) -> str:
        path = self._workspace.resolve(raw_path)
        _require_file(path, raw_path)
        try:
            with path.open("rb") as handle:
                if b"\0" in handle.read(SNIFF_BYTES):
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
        self._max_entries = positive("max_entries", max_entries)
        self._declaration = declare(
            "list_directory",
            "List the entries of a directory in the workspace, sorted by name. Directories "
            f"end with '/'. At most {max_entries} entries are shown.",
            {"path": string_schema("Directory relative to the workspace root; default '.'.")},
            required=(),
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `list_directory`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """List the directory in a worker thread."""
        check_names(arguments, self._declaration)
        path = string_argument(arguments, "path", default=".")
        return await asyncio.to_thread(self._list, path)

    def _list(self, raw_path: str) -> str:
        path = self._workspace.resolve(raw_path)
        require_directory(path, raw_path)
        try:
            with os.scandir(path) as scan:
                entries = sorted((entry.name, entry.is_dir()) for entry in scan)
        except OSError as exc:
            raise ToolError(f"cannot list {raw_path!r}: {exc.strerror or exc}") from exc
        if not entries:
            return "(empty directory)"
        lines = [name + "/" if is_dir else name for name, is_dir in entries]
        return capped_lines(lines, self._max_entries, "entries")


def _require_file(path: Path, raw_path: str) -> None:
    if not path.exists():
        raise ToolError(f"no such file: {raw_path!r}")
    if path.is_dir():
        raise ToolError(f"{raw_path!r} is a directory; use list_directory to see its entries")
    if not path.is_file():
        raise ToolError(f"{raw_path!r} is not a regular file")


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
