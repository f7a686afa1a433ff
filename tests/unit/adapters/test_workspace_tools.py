"""The workspace file tools: outputs, caps, argument checks and confinement to the root."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chatscope.adapters.tools.files import ListDirectoryTool, ReadFileTool
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.adapters.tools.search import GlobTool, SearchFileContentTool
from chatscope.adapters.tools.workspace import build_workspace_tools
from chatscope.adapters.tools.write import WriteFileTool
from chatscope.errors import ConfigurationError, ToolError, WorkspaceEscapeError
from chatscope.services.frozen import FrozenDict
from chatscope.services.messages import ToolCallBlock
from chatscope.services.tools.ports import Tool
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry

TOOL_NAMES = ("read_file", "list_directory", "glob", "search_file_content", "write_file")

APPROVE_ALL = ToolPolicy(auto_approve=frozenset({"*"}))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A workspace root next to (not containing) an `outside` directory with a secret."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("needle secret\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace


@pytest.fixture
def workspace(root: Path) -> Workspace:
    """The workspace over `root`."""
    return Workspace(root)


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


# --- Workspace --------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", ["", ".", "./", "a/..", "a/./.."])
def test_resolve_root_spellings(workspace: Workspace, relative: str) -> None:
    """Empty, `.` and paths that climb back to the root all name the root."""
    assert workspace.resolve(relative) == workspace.root


def test_resolve_relative_and_absolute_inside(workspace: Workspace) -> None:
    """Relative paths join the root; absolute paths inside the root are accepted as is."""
    assert workspace.resolve("a/b.txt") == workspace.root / "a" / "b.txt"
    inside = str(workspace.root / "x" / "y")
    assert workspace.resolve(inside) == workspace.root / "x" / "y"


def test_workspace_stores_resolved_root(tmp_path: Path) -> None:
    """A root given through a symlink is stored resolved, so containment checks compare reals."""
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert Workspace(tmp_path / "alias").root == (tmp_path / "real").resolve()


@pytest.mark.parametrize("relative", ["..", "../outside/secret.txt", "a/../../outside", "a/../.."])
def test_resolve_refuses_dotdot_escape(workspace: Workspace, relative: str) -> None:
    """`..` that climbs above the root is refused, naming the path and the root."""
    with pytest.raises(WorkspaceEscapeError) as caught:
        workspace.resolve(relative)
    assert repr(relative) in str(caught.value)
    assert str(workspace.root) in str(caught.value)


def test_resolve_refuses_absolute_outside(workspace: Workspace, root: Path) -> None:
    """An absolute path elsewhere on disk is refused."""
    with pytest.raises(WorkspaceEscapeError, match="outside the workspace root"):
        workspace.resolve(str(root.parent / "outside" / "secret.txt"))


def test_resolve_refuses_symlink_pointing_out(workspace: Workspace, root: Path) -> None:
    """A symlink inside the root that points outside is followed and refused."""
    (root / "link").symlink_to(root.parent / "outside")
    with pytest.raises(WorkspaceEscapeError):
        workspace.resolve("link/secret.txt")


def test_resolve_accepts_symlink_pointing_inside(workspace: Workspace, root: Path) -> None:
    """A symlink to somewhere inside the root resolves to its target."""
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert workspace.resolve("alias/f") == root / "real" / "f"


def test_resolve_refuses_nul_byte(workspace: Workspace) -> None:
    """A NUL byte is refused as a tool error, not passed to the OS."""
    with pytest.raises(ToolError, match="NUL"):
        workspace.resolve("a\0b")


def test_workspace_root_must_be_a_directory(tmp_path: Path) -> None:
    """A missing root or a file root is a configuration error."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="not an existing directory"):
        build_workspace_tools(tmp_path / "missing")
    with pytest.raises(ConfigurationError):
        build_workspace_tools(tmp_path / "file")


def test_build_workspace_tools_order_and_protocol(root: Path) -> None:
    """The five tools come in the documented order and each satisfies the `Tool` protocol."""
    tools = build_workspace_tools(root)
    assert tuple(tool.declaration.name for tool in tools) == TOOL_NAMES
    assert all(isinstance(tool, Tool) for tool in tools)


@pytest.mark.parametrize(
    ("factory", "cap"),
    [
        (ReadFileTool, "max_bytes"),
        (ListDirectoryTool, "max_entries"),
        (GlobTool, "max_results"),
        (SearchFileContentTool, "max_matches"),
        (SearchFileContentTool, "max_file_bytes"),
        (WriteFileTool, "max_bytes"),
    ],
)
def test_caps_must_be_positive(workspace: Workspace, factory: Any, cap: str) -> None:
    """A zero cap is refused when the tool is built, not when the model calls it."""
    with pytest.raises(ConfigurationError, match=cap):
        factory(workspace, **{cap: 0})


# --- declarations -----------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(5))
def test_declaration_is_a_closed_json_schema(root: Path, index: int) -> None:
    """Each declaration is a frozen object schema: typed, described, required ⊆ properties."""
    declaration = build_workspace_tools(root)[index].declaration
    parameters = declaration.parameters
    assert isinstance(parameters, FrozenDict)
    assert parameters["type"] == "object"
    assert parameters["additionalProperties"] is False
    properties = parameters["properties"]
    assert set(parameters["required"]) <= set(properties)
    for schema in properties.values():
        assert schema["type"] in {"string", "integer"}
        assert schema["description"]
    assert declaration.description


def test_declaration_required_lists(root: Path) -> None:
    """The required lists are exactly the arguments each tool cannot do without."""
    required = {
        t.declaration.name: t.declaration.parameters["required"]
        for t in build_workspace_tools(root)
    }
    assert required == {
        "read_file": ("path",),
        "list_directory": (),
        "glob": ("pattern",),
        "search_file_content": ("pattern",),
        "write_file": ("path", "content"),
    }


# --- read_file --------------------------------------------------------------------------------


async def test_read_file_returns_exact_content(workspace: Workspace, root: Path) -> None:
    """Content comes back byte for byte, `\\r\\n` included."""
    write(root, "notes/a.txt", "one\r\ntwo\nthree")
    assert await ReadFileTool(workspace).run({"path": "notes/a.txt"}) == "one\r\ntwo\nthree"


async def test_read_file_offset_and_limit(workspace: Workspace, root: Path) -> None:
    """`offset` skips lines and `limit` stops after that many."""
    write(root, "a.txt", "l0\nl1\nl2\nl3\n")
    tool = ReadFileTool(workspace)
    assert await tool.run({"path": "a.txt", "offset": 1, "limit": 2}) == "l1\nl2\n"
    assert await tool.run({"path": "a.txt", "offset": 3}) == "l3\n"
    assert await tool.run({"path": "a.txt", "limit": 1.0}) == "l0\n"


async def test_read_file_offset_past_end(workspace: Workspace, root: Path) -> None:
    """An offset beyond the last line says so instead of returning nothing."""
    write(root, "a.txt", "l0\nl1")
    result = await ReadFileTool(workspace).run({"path": "a.txt", "offset": 2})
    assert result == "[offset 2 is past the end of the file, which has 2 lines]"


async def test_read_file_truncates_with_note(workspace: Workspace, root: Path) -> None:
    """Output over `max_bytes` is cut with a note giving shown and total bytes."""
    write(root, "big.txt", "abcdefghij")
    result = await ReadFileTool(workspace, max_bytes=4).run({"path": "big.txt"})
    assert result == "abcd\n[truncated: showing first 4 of 10 bytes]"


async def test_read_file_truncation_keeps_whole_characters(
    workspace: Workspace, root: Path
) -> None:
    """The cut backs off to a character boundary rather than splitting a UTF-8 sequence."""
    write(root, "u.txt", "aé€b")  # 1 + 2 + 3 + 1 bytes
    result = await ReadFileTool(workspace, max_bytes=5).run({"path": "u.txt"})
    assert result == "aé\n[truncated: showing first 3 of 7 bytes]"


async def test_read_file_refuses_binary(workspace: Workspace, root: Path) -> None:
    """A NUL byte in the first 8 KiB marks a binary file, which is refused."""
    write(root, "blob.bin", b"PK\x03\x04\x00\x01")
    with pytest.raises(ToolError, match="binary file"):
        await ReadFileTool(workspace).run({"path": "blob.bin"})


async def test_read_file_nul_after_sniff_window_is_text(workspace: Workspace, root: Path) -> None:
    """Only the first 8 KiB are sniffed, so a late NUL does not make the file binary."""
    write(root, "late.txt", "x" * 8192 + "\0")
    assert await ReadFileTool(workspace).run({"path": "late.txt"}) == "x" * 8192 + "\0"


async def test_read_file_missing_and_directory(workspace: Workspace, root: Path) -> None:
    """A missing file and a directory are both reported as tool errors."""
    (root / "sub").mkdir()
    tool = ReadFileTool(workspace)
    with pytest.raises(ToolError, match=r"no such file: 'nope\.txt'"):
        await tool.run({"path": "nope.txt"})
    with pytest.raises(ToolError, match="is a directory"):
        await tool.run({"path": "sub"})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "missing required argument 'path'"),
        ({"path": 3}, "'path' must be a string, got int"),
        ({"path": "a.txt", "offset": -1}, "'offset' must be at least 0"),
        ({"path": "a.txt", "limit": 0}, "'limit' must be at least 1"),
        ({"path": "a.txt", "limit": True}, "'limit' must be an integer, got bool"),
        ({"path": "a.txt", "offset": "2"}, "'offset' must be an integer, got str"),
        ({"path": "a.txt", "lines": 2}, r"unknown arguments \['lines'\]"),
    ],
)
async def test_read_file_invalid_arguments(
    workspace: Workspace, root: Path, arguments: Mapping[str, Any], message: str
) -> None:
    """Missing, mistyped, out-of-range and unknown arguments are tool errors naming the issue."""
    write(root, "a.txt", "x")
    with pytest.raises(ToolError, match=message):
        await ReadFileTool(workspace).run(arguments)


# --- list_directory ---------------------------------------------------------------------------


async def test_list_directory_sorted_with_slashes(workspace: Workspace, root: Path) -> None:
    """Entries are sorted and directories carry a trailing `/`; the default path is the root."""
    write(root, "b.txt", "")
    write(root, "a/inner.txt", "")
    write(root, "c/d.txt", "")
    tool = ListDirectoryTool(workspace)
    assert await tool.run({}) == "a/\nb.txt\nc/"
    assert await tool.run({"path": "c"}) == "d.txt"


async def test_list_directory_empty(workspace: Workspace) -> None:
    """An empty directory says so rather than returning an empty string."""
    assert await ListDirectoryTool(workspace).run({"path": "."}) == "(empty directory)"


async def test_list_directory_cap_note(workspace: Workspace, root: Path) -> None:
    """Past `max_entries` the listing stops with a note of how many were left out."""
    for name in "abcde":
        write(root, f"{name}.txt", "")
    result = await ListDirectoryTool(workspace, max_entries=2).run({})
    assert result == "a.txt\nb.txt\n[truncated: 3 more entries not shown]"


async def test_list_directory_refuses_files_and_missing(workspace: Workspace, root: Path) -> None:
    """Listing a file or a missing directory is a tool error."""
    write(root, "f.txt", "")
    tool = ListDirectoryTool(workspace)
    with pytest.raises(ToolError, match="is not a directory"):
        await tool.run({"path": "f.txt"})
    with pytest.raises(ToolError, match="no such directory"):
        await tool.run({"path": "gone"})


# --- glob -------------------------------------------------------------------------------------


@pytest.fixture
def tree(root: Path) -> Path:
    """A small source tree for glob and search."""
    write(root, "setup.py", "import setuptools\n")
    write(root, "README.md", "# Title\nneedle here\n")
    write(root, "src/pkg/__init__.py", "")
    write(root, "src/pkg/core.py", "def needle():\n    return 1\n")
    write(root, "src/pkg/data.json", '{"needle": true}\n')
    return root


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"pattern": "**/*.py"}, "setup.py\nsrc/pkg/__init__.py\nsrc/pkg/core.py"),
        ({"pattern": "*.py"}, "setup.py"),
        ({"pattern": "src/*/c*.py"}, "src/pkg/core.py"),
        (
            {"pattern": "*", "path": "src/pkg"},
            "src/pkg/__init__.py\nsrc/pkg/core.py\nsrc/pkg/data.json",
        ),
        ({"pattern": "./src/**/*.json"}, "src/pkg/data.json"),
        ({"pattern": "*.rs"}, "No files match '*.rs'."),
    ],
)
async def test_glob_matches(
    workspace: Workspace, tree: Path, arguments: Mapping[str, Any], expected: str
) -> None:
    """Matches are files relative to the root, sorted; `*` stays in one segment, `**` spans."""
    assert await GlobTool(workspace).run(arguments) == expected


async def test_glob_cap_note(workspace: Workspace, tree: Path) -> None:
    """Past `max_results` the list stops with a note of how many were left out."""
    result = await GlobTool(workspace, max_results=1).run({"pattern": "**/*"})
    assert result == "README.md\n[truncated: 4 more files not shown]"


@pytest.mark.parametrize("pattern", ["../*", "src/../../outside/*", "/etc/*"])
async def test_glob_refuses_escaping_patterns(workspace: Workspace, pattern: str) -> None:
    """Patterns with `..` segments or an absolute start are escape attempts."""
    with pytest.raises(WorkspaceEscapeError):
        await GlobTool(workspace).run({"pattern": pattern})


async def test_glob_filters_symlinked_escapes(workspace: Workspace, root: Path) -> None:
    """Files reached through links pointing out of the root are never listed; loops end."""
    write(root, "in.txt", "")
    (root / "out_dir").symlink_to(root.parent / "outside")
    (root / "out_file.txt").symlink_to(root.parent / "outside" / "secret.txt")
    (root / "loop").symlink_to(root)
    assert await GlobTool(workspace).run({"pattern": "**/*.txt"}) == "in.txt"


async def test_glob_follows_symlinks_inside(workspace: Workspace, root: Path) -> None:
    """A symlinked directory that stays inside the root is searched once, under its link name."""
    write(root, "real/x.txt", "")
    (root / "alias").symlink_to(root / "real")
    assert await GlobTool(workspace).run({"pattern": "alias/*.txt"}) == "alias/x.txt"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "missing required argument 'pattern'"),
        ({"pattern": ""}, "must not be empty"),
        ({"pattern": "./"}, "must not be empty"),
        ({"pattern": ["*"]}, "must be a string, got list"),
    ],
)
async def test_glob_invalid_arguments(
    workspace: Workspace, arguments: Mapping[str, Any], message: str
) -> None:
    """A missing, empty or non-string pattern is a tool error."""
    with pytest.raises(ToolError, match=message):
        await GlobTool(workspace).run(arguments)


# --- search_file_content ----------------------------------------------------------------------


async def test_search_lines_sorted_by_path(workspace: Workspace, tree: Path) -> None:
    """Each match is `path:line: text`, paths relative to the root, files in sorted order."""
    result = await SearchFileContentTool(workspace).run({"pattern": "needle"})
    assert result == (
        "README.md:2: needle here\n"
        "src/pkg/core.py:1: def needle():\n"
        'src/pkg/data.json:1: {"needle": true}'
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"pattern": "needle", "include": "*.py"}, "src/pkg/core.py:1: def needle():"),
        (
            {"pattern": "needle", "include": "src/**/*.json"},
            'src/pkg/data.json:1: {"needle": true}',
        ),
        ({"pattern": "re", "path": "src/pkg/core.py"}, "src/pkg/core.py:2:     return 1"),
        ({"pattern": r"^\s+return", "path": "src"}, "src/pkg/core.py:2:     return 1"),
        ({"pattern": "absent"}, "No matches for 'absent'."),
    ],
)
async def test_search_filters(
    workspace: Workspace, tree: Path, arguments: Mapping[str, Any], expected: str
) -> None:
    """`include`, `path` (file or directory) and regex anchors narrow the search."""
    assert await SearchFileContentTool(workspace).run(arguments) == expected


async def test_search_orders_by_path_across_directories(workspace: Workspace, root: Path) -> None:
    """Results follow sorted paths, not walk order: `a/x.txt` comes before the root's `b.txt`."""
    write(root, "b.txt", "hit\n")
    write(root, "a/x.txt", "hit\n")
    result = await SearchFileContentTool(workspace).run({"pattern": "hit"})
    assert result == "a/x.txt:1: hit\nb.txt:1: hit"


async def test_search_has_no_phantom_last_line(workspace: Workspace, root: Path) -> None:
    """A final newline does not create an extra empty line for `^$` to match."""
    write(root, "f.txt", "a\n\nb\n")
    result = await SearchFileContentTool(workspace).run({"pattern": "^$"})
    assert result == "f.txt:2: "


async def test_search_cap_note(workspace: Workspace, root: Path) -> None:
    """Past `max_matches` the search stops with a note."""
    write(root, "a.txt", "x\nx\nx\n")
    result = await SearchFileContentTool(workspace, max_matches=2).run({"pattern": "x"})
    assert result == (
        "a.txt:1: x\na.txt:2: x\n"
        "[truncated: showing the first 2 matches; narrow the pattern, path or include to see "
        "the rest]"
    )


async def test_search_skips_binary_and_oversized(workspace: Workspace, root: Path) -> None:
    """Binary files and files over `max_file_bytes` are skipped and counted."""
    write(root, "a.bin", b"hit\0")
    write(root, "big.txt", "hit " * 10)
    write(root, "ok.txt", "hit\n")
    result = await SearchFileContentTool(workspace, max_file_bytes=20).run({"pattern": "hit"})
    assert result == "ok.txt:1: hit\n[skipped 2 binary, unreadable or oversized files]"


async def test_search_truncates_long_lines_and_strips_cr(workspace: Workspace, root: Path) -> None:
    """Lines over 500 characters are clipped; a CRLF's `\\r` is not shown."""
    write(root, "long.txt", "k" + "y" * 600 + "\r\nk\r\n")
    result = await SearchFileContentTool(workspace).run({"pattern": "k"})
    assert result == f"long.txt:1: k{'y' * 499} [line truncated]\nlong.txt:2: k"


async def test_search_never_follows_links_out(workspace: Workspace, root: Path) -> None:
    """Files behind symlinks pointing out of the root are not searched."""
    (root / "out_dir").symlink_to(root.parent / "outside")
    (root / "out_file.txt").symlink_to(root.parent / "outside" / "secret.txt")
    result = await SearchFileContentTool(workspace).run({"pattern": "secret"})
    assert result == "No matches for 'secret'."


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pattern": "("}, r"invalid regular expression '\(': missing \), unterminated"),
        ({}, "missing required argument 'pattern'"),
        ({"pattern": "x", "include": 3}, "'include' must be a string"),
        ({"pattern": "x", "path": "nowhere"}, "no such file or directory: 'nowhere'"),
    ],
)
async def test_search_invalid_arguments(
    workspace: Workspace, arguments: Mapping[str, Any], message: str
) -> None:
    """A bad regex, a missing pattern, a mistyped filter and a missing path are tool errors."""
    with pytest.raises(ToolError, match=message):
        await SearchFileContentTool(workspace).run(arguments)


# --- write_file -------------------------------------------------------------------------------


async def test_write_file_creates_parents(workspace: Workspace, root: Path) -> None:
    """Parent directories are created and the exact UTF-8 bytes land on disk."""
    result = await WriteFileTool(workspace).run({"path": "a/b/c.txt", "content": "é\r\nx"})
    assert result == "Wrote 5 bytes to a/b/c.txt."
    assert (root / "a" / "b" / "c.txt").read_bytes() == "é\r\nx".encode()


async def test_write_file_replaces_existing(workspace: Workspace, root: Path) -> None:
    """An existing file is replaced, not appended to."""
    write(root, "f.txt", "old content")
    await WriteFileTool(workspace).run({"path": "f.txt", "content": "new"})
    assert (root / "f.txt").read_text() == "new"


async def test_write_file_refuses_oversized_content(workspace: Workspace, root: Path) -> None:
    """Content over `max_bytes` (counted in UTF-8 bytes) is refused and nothing is written."""
    with pytest.raises(ToolError, match="content is 6 bytes; write_file accepts at most 5"):
        await WriteFileTool(workspace, max_bytes=5).run({"path": "f.txt", "content": "ééé"})
    assert not (root / "f.txt").exists()


async def test_write_file_refuses_directory(workspace: Workspace, root: Path) -> None:
    """Writing over a directory (the root included) is refused."""
    (root / "sub").mkdir()
    tool = WriteFileTool(workspace)
    for path in ("sub", "."):
        with pytest.raises(ToolError, match="is a directory"):
            await tool.run({"path": path, "content": "x"})


async def test_write_file_parent_is_a_file(workspace: Workspace, root: Path) -> None:
    """A parent path that is a file is reported as a tool error, not an OSError."""
    write(root, "f.txt", "")
    with pytest.raises(ToolError, match=r"cannot write 'f\.txt/x'"):
        await WriteFileTool(workspace).run({"path": "f.txt/x", "content": "x"})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "f.txt"}, "missing required argument 'content'"),
        ({"content": "x"}, "missing required argument 'path'"),
        ({"path": "f.txt", "content": 5}, "'content' must be a string, got int"),
        ({"path": "f.txt", "content": "\ud800"}, "cannot be encoded as UTF-8"),
    ],
)
async def test_write_file_invalid_arguments(
    workspace: Workspace, root: Path, arguments: Mapping[str, Any], message: str
) -> None:
    """Missing or unencodable arguments are tool errors and create nothing."""
    with pytest.raises(ToolError, match=message):
        await WriteFileTool(workspace).run(arguments)
    assert not (root / "f.txt").exists()


# --- escapes, directly and through the registry -----------------------------------------------


def escape_paths(root: Path) -> dict[str, str]:
    """One escaping path per kind: `..`, absolute, and through a symlink pointing out."""
    (root / "link").symlink_to(root.parent / "outside")
    return {
        "dotdot": "../outside/secret.txt",
        "absolute": str(root.parent / "outside" / "secret.txt"),
        "symlink": "link/secret.txt",
    }


def escape_arguments(name: str, path: str) -> dict[str, Any]:
    """Arguments for tool `name` that aim it at `path`."""
    return {
        "read_file": {"path": path},
        "list_directory": {"path": path.rsplit("/", 1)[0]},
        "glob": {"pattern": "*", "path": path.rsplit("/", 1)[0]},
        "search_file_content": {"pattern": "secret", "path": path},
        "write_file": {"path": path, "content": "pwned"},
    }[name]


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
async def test_every_tool_refuses_escapes(root: Path, kind: str) -> None:
    """Each tool raises `WorkspaceEscapeError` for each kind of escape and touches nothing."""
    path = escape_paths(root)[kind]
    for tool in build_workspace_tools(root):
        with pytest.raises(WorkspaceEscapeError, match="outside the workspace root"):
            await tool.run(escape_arguments(tool.declaration.name, path))
    assert (root.parent / "outside" / "secret.txt").read_text() == "needle secret\n"
    assert sorted(p.name for p in (root.parent / "outside").iterdir()) == ["secret.txt"]


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
async def test_registry_turns_escapes_into_error_results(root: Path, kind: str) -> None:
    """Through `ToolRegistry` an escape becomes an error result for the model, not an exception."""
    registry = ToolRegistry(build_workspace_tools(root), policy=APPROVE_ALL)
    path = escape_paths(root)[kind]
    for name in TOOL_NAMES:
        call = ToolCallBlock.create(f"call-{name}", name, escape_arguments(name, path))
        result = await registry.run(call)
        assert result.call_id == f"call-{name}"
        assert result.error is not None, name
        assert "outside the workspace root" in result.error, name


async def test_write_file_is_refused_without_approval(root: Path) -> None:
    """`write_file` needs approval: with no approver and no auto-approval, nothing is written."""
    registry = ToolRegistry(build_workspace_tools(root))
    refused = await registry.run(
        ToolCallBlock.create("1", "write_file", {"path": "x.md", "content": "hi"})
    )
    assert refused.error is not None
    assert "needs approval" in refused.error
    assert not (root / "x.md").exists()


async def test_registry_runs_tools_end_to_end(root: Path) -> None:
    """A write then a read through the registry round-trips with frozen arguments."""
    registry = ToolRegistry(build_workspace_tools(root), policy=APPROVE_ALL)
    written = await registry.run(
        ToolCallBlock.create("1", "write_file", {"path": "n/x.md", "content": "hi"})
    )
    read = await registry.run(ToolCallBlock.create("2", "read_file", {"path": "n/x.md"}))
    assert (written.result, read.result) == ("Wrote 2 bytes to n/x.md.", "hi")
