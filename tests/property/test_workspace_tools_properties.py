"""Properties of the workspace tools: confinement to the root, and faithful file contents."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chatscope.adapters.tools.files import ListDirectoryTool, ReadFileTool
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.adapters.tools.search import GlobTool, SearchFileContentTool
from chatscope.adapters.tools.workspace import build_workspace_tools
from chatscope.adapters.tools.write import WriteFileTool
from chatscope.errors import ToolError, WorkspaceEscapeError
from chatscope.services.messages import ToolCallBlock
from chatscope.services.tools.ports import Tool
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry

TOOL_NAMES = ("read_file", "list_directory", "glob", "search_file_content", "write_file")
SECRET = "needle OUTSIDE"

names = st.text(alphabet="abc", min_size=1, max_size=3)
segments = st.one_of(names, st.just(".."), st.just("."))
relative_paths = st.lists(segments, max_size=8).map("/".join)
text_without_nul = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"))
file_names = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in {".", ".."})
non_strings = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

ALL = frozenset({"*"})


@contextmanager
def fresh_root() -> Iterator[Path]:
    """A new workspace root per example, beside an `outside` directory holding a secret."""
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp).resolve()
        (base / "outside").mkdir()
        (base / "outside" / "secret.txt").write_text(SECRET + "\n")
        (base / "ws").mkdir()
        yield base / "ws"


def run(tool: Tool, arguments: Mapping[str, Any]) -> str:
    return asyncio.run(tool.run(arguments))


def tool_named(root: Path, name: str) -> Tool:
    return next(tool for tool in build_workspace_tools(root) if tool.declaration.name == name)


def resolve_or_error(workspace: Workspace, relative: str) -> Path | ToolError:
    try:
        return workspace.resolve(relative)
    except ToolError as exc:
        return exc


def normalised_inside(root: Path, relative: str) -> bool:
    return Path(os.path.normpath(root / relative)).is_relative_to(root)


def create_files(root: Path, paths: list[tuple[str, ...]], content: str = "") -> set[str]:
    """Create what files it can (skipping file/directory clashes); return their posix paths."""
    created: set[str] = set()
    for parts in paths:
        target = root.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_text(content)
                created.add("/".join(parts))
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue
    return {path for path in created if (root / path).is_file()}


def lines_of(data: bytes) -> list[bytes]:
    """Lines split on `\\n` only, keeping the ends, as `read_file` counts them."""
    pieces = data.split(b"\n")
    return [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def result_paths(output: str) -> list[str]:
    return [line.split(":", 1)[0] for line in output.splitlines() if not line.startswith("[")]


tree_paths = st.lists(
    st.lists(st.sampled_from("ab"), min_size=1, max_size=3).map(tuple), max_size=12
)


# --- Workspace.resolve ------------------------------------------------------------------------


@given(relative=relative_paths)
def test_resolve_is_inside_or_refused(relative: str) -> None:
    """Any mix of names, `.` and `..` resolves inside the root or raises; nothing outside."""
    with fresh_root() as root:
        workspace = Workspace(root)
        try:
            resolved = workspace.resolve(relative)
        except WorkspaceEscapeError:
            return
        assert resolved.is_relative_to(root)


@given(relative=relative_paths)
def test_resolve_agrees_with_lexical_normalisation(relative: str) -> None:
    """Without symlinks, a path is refused exactly when normalising it climbs out of the root."""
    with fresh_root() as root:
        workspace = Workspace(root)
        if normalised_inside(root, relative):
            assert workspace.resolve(relative) == Path(os.path.normpath(root / relative))
        else:
            with pytest.raises(WorkspaceEscapeError):
                workspace.resolve(relative)


link_targets = st.one_of(
    st.lists(segments, min_size=1, max_size=6).map("/".join),
    st.sampled_from(["../outside", "/", "../..", "."]),
)


@given(links=st.dictionaries(names, link_targets, max_size=4), relative=relative_paths)
def test_resolve_with_symlinks_never_leaves_root(links: dict[str, str], relative: str) -> None:
    """With symlinks pointing anywhere (loops included), a returned path's real path is inside."""
    with fresh_root() as root:
        for name, target in links.items():
            (root / name).symlink_to(target)
        outcome = resolve_or_error(Workspace(root), relative)
        if isinstance(outcome, WorkspaceEscapeError):
            return
        if isinstance(outcome, ToolError):
            assert "cannot resolve" in str(outcome)  # a symlink loop
            return
        resolved = outcome
        assert Path(os.path.realpath(resolved)).is_relative_to(root)


@given(tail=st.lists(names, max_size=4), inside=st.booleans())
def test_resolve_absolute_paths(tail: list[str], inside: bool) -> None:
    """An absolute path is accepted exactly when it lies under the root."""
    with fresh_root() as root:
        target = (root if inside else root.parent / "outside").joinpath(*tail)
        if inside:
            assert Workspace(root).resolve(str(target)) == target
        else:
            with pytest.raises(WorkspaceEscapeError):
                Workspace(root).resolve(str(target))


@given(before=relative_paths, after=relative_paths)
def test_resolve_refuses_any_nul(before: str, after: str) -> None:
    """A NUL byte anywhere in a path is a tool error, never an OS-level ValueError."""
    with fresh_root() as root, pytest.raises(ToolError, match="NUL"):
        Workspace(root).resolve(f"{before}\0{after}")


# --- escapes for every tool -------------------------------------------------------------------


@st.composite
def dotdot_escapes(draw: st.DrawFn) -> str:
    """`n` names, then more than `n` `..`, then anything: always above the root."""
    down = draw(st.lists(names, max_size=3))
    up = [".."] * (len(down) + draw(st.integers(1, 3)))
    return "/".join([*down, *up, *draw(st.lists(names, max_size=3))])


def escaping_path(kind: str, root: Path, tail: list[str]) -> str:
    """A path of the given kind that leads out of the root."""
    if kind == "absolute":
        return str((root.parent / "outside").joinpath(*tail))
    (root / "link").symlink_to(root.parent / "outside")
    return "/".join(["link", *tail])


def aimed_at(name: str, path: str) -> dict[str, Any]:
    return {
        "read_file": {"path": path},
        "list_directory": {"path": path},
        "glob": {"pattern": "**/*", "path": path},
        "search_file_content": {"pattern": "needle", "path": path},
        "write_file": {"path": path, "content": "pwned"},
    }[name]


def assert_outside_untouched(root: Path) -> None:
    outside = root.parent / "outside"
    assert [p.name for p in outside.iterdir()] == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == SECRET + "\n"


@pytest.mark.parametrize("name", TOOL_NAMES)
@given(path=dotdot_escapes())
def test_tools_refuse_dotdot_escapes(name: str, path: str) -> None:
    """Every tool refuses a `..` escape and leaves the outside untouched."""
    with fresh_root() as root:
        with pytest.raises(WorkspaceEscapeError):
            run(tool_named(root, name), aimed_at(name, path))
        assert_outside_untouched(root)


@pytest.mark.parametrize("kind", ["absolute", "symlink"])
@pytest.mark.parametrize("name", TOOL_NAMES)
@given(tail=st.lists(names, max_size=3))
def test_tools_refuse_absolute_and_symlink_escapes(name: str, kind: str, tail: list[str]) -> None:
    """Every tool refuses an absolute path elsewhere and a path through an outward symlink."""
    with fresh_root() as root:
        path = escaping_path(kind, root, tail)
        with pytest.raises(WorkspaceEscapeError):
            run(tool_named(root, name), aimed_at(name, path))
        assert_outside_untouched(root)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("name", TOOL_NAMES)
@given(data=st.data())
def test_registry_reports_escapes_as_results(name: str, kind: str, data: st.DataObject) -> None:
    """Through the registry, every escape becomes an error result naming the workspace root."""
    with fresh_root() as root:
        if kind == "dotdot":
            path = data.draw(dotdot_escapes())
        else:
            path = escaping_path(kind, root, data.draw(st.lists(names, max_size=3)))
        registry = ToolRegistry(build_workspace_tools(root), policy=ToolPolicy(auto_approve=ALL))
        result = asyncio.run(registry.run(ToolCallBlock.create("c", name, aimed_at(name, path))))
        assert result.error is not None
        assert str(root) in result.error
        assert_outside_untouched(root)


# --- argument validation ----------------------------------------------------------------------


VALID_ARGUMENTS: dict[str, dict[str, Any]] = {
    "read_file": {"path": "f.txt"},
    "list_directory": {"path": "."},
    "glob": {"pattern": "*", "path": "."},
    "search_file_content": {"pattern": "x", "path": ".", "include": "*"},
    "write_file": {"path": "f.txt", "content": "x"},
}
STRING_ARGUMENTS = [(tool, arg) for tool, args in VALID_ARGUMENTS.items() for arg in args]


@pytest.mark.parametrize(("name", "argument"), STRING_ARGUMENTS)
@given(value=non_strings)
def test_non_string_arguments_are_refused(name: str, argument: str, value: Any) -> None:
    """Any non-string value for a string argument is a tool error naming the argument."""
    with fresh_root() as root:
        (root / "f.txt").write_text("x")
        arguments = {**VALID_ARGUMENTS[name], argument: value}
        with pytest.raises(ToolError, match=f"{argument!r} must be a string"):
            run(tool_named(root, name), arguments)


@pytest.mark.parametrize("name", TOOL_NAMES)
@given(extra=st.text(min_size=1, max_size=8))
def test_unknown_arguments_are_refused(name: str, extra: str) -> None:
    """An argument the schema does not declare is refused, not silently ignored."""
    with fresh_root() as root:
        tool = tool_named(root, name)
        assume(extra not in tool.declaration.parameters["properties"])
        with pytest.raises(ToolError, match="unknown arguments"):
            run(tool, {**VALID_ARGUMENTS[name], extra: 1})


@pytest.mark.parametrize(("argument", "minimum"), [("offset", 0), ("limit", 1)])
@given(value=st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=3)))
def test_bad_line_numbers_are_refused(argument: str, minimum: int, value: Any) -> None:
    """Below-minimum, fractional and non-numeric offsets and limits are tool errors."""
    assume(not (isinstance(value, float) and value.is_integer() and value >= minimum))
    with fresh_root() as root:
        (root / "f.txt").write_text("x")
        with pytest.raises(ToolError, match=repr(argument)):
            run(ReadFileTool(Workspace(root)), {"path": "f.txt", argument: value})


# --- write_file and read_file -----------------------------------------------------------------


@given(parts=st.lists(names, min_size=1, max_size=4), content=text_without_nul)
def test_write_then_read_round_trips(parts: list[str], content: str) -> None:
    """Whatever text is written is read back exactly, `\\r` and all."""
    with fresh_root() as root:
        workspace = Workspace(root)
        path = "/".join(parts)
        run(WriteFileTool(workspace), {"path": path, "content": content})
        assert run(ReadFileTool(workspace), {"path": path}) == content


@given(content=st.text(alphabet=st.characters(codec="utf-8")))
def test_write_reports_and_stores_exact_bytes(content: str) -> None:
    """The confirmation's byte count is the UTF-8 length, and those bytes are on disk."""
    with fresh_root() as root:
        result = run(WriteFileTool(Workspace(root)), {"path": "d/f.txt", "content": content})
        data = content.encode()
        assert result == f"Wrote {len(data)} bytes to d/f.txt."
        assert (root / "d" / "f.txt").read_bytes() == data


@given(content=st.text(min_size=1), cap=st.integers(1, 16))
def test_write_refuses_over_cap_and_keeps_old_file(content: str, cap: int) -> None:
    """Content over the cap is refused and an existing file keeps its content."""
    assume(len(content.encode("utf-8", "surrogatepass")) > cap)
    with fresh_root() as root:
        (root / "f.txt").write_text("old")
        with pytest.raises(ToolError):
            run(
                WriteFileTool(Workspace(root), max_bytes=cap), {"path": "f.txt", "content": content}
            )
        assert (root / "f.txt").read_text() == "old"


@given(head=text_without_nul, tail=st.text(alphabet=st.characters(codec="utf-8")))
def test_nul_in_sniff_window_means_binary(head: str, tail: str) -> None:
    """A NUL within the first 8 KiB makes `read_file` refuse the file as binary."""
    assume(len(head.encode()) < 8192)
    with fresh_root() as root:
        (root / "f").write_bytes(f"{head}\0{tail}".encode())
        with pytest.raises(ToolError, match="binary file"):
            run(ReadFileTool(Workspace(root)), {"path": "f"})


@given(
    content=st.text(alphabet=st.sampled_from("ab\n\r"), max_size=40),
    offset=st.integers(0, 12),
    limit=st.integers(1, 12),
)
def test_read_offset_limit_selects_lines(content: str, offset: int, limit: int) -> None:
    """`offset`/`limit` return exactly those `\\n`-terminated lines, or say the offset is past."""
    with fresh_root() as root:
        (root / "f").write_bytes(content.encode())
        result = run(ReadFileTool(Workspace(root)), {"path": "f", "offset": offset, "limit": limit})
        lines = lines_of(content.encode())
        if offset and offset >= len(lines):
            assert result.startswith(f"[offset {offset} is past the end")
            assert f"has {len(lines)} lines" in result
        else:
            assert result == b"".join(lines[offset : offset + limit]).decode()


TRUNCATED = re.compile(r"\[truncated: showing first (\d+) of (\d+) bytes\]\Z")


@given(content=text_without_nul, cap=st.integers(1, 40))
def test_read_truncation_is_an_honest_prefix(content: str, cap: int) -> None:
    """Over the cap, output is a whole-character prefix of at most `cap` bytes with true counts."""
    with fresh_root() as root:
        data = content.encode()
        (root / "f").write_bytes(data)
        result = run(ReadFileTool(Workspace(root), max_bytes=cap), {"path": "f"})
        if len(data) <= cap:
            assert result == content
            return
        note = TRUNCATED.search(result)
        assert note is not None
        shown = int(note.group(1))
        assert cap - 3 <= shown <= cap
        text = data[:shown].decode()
        separator = "" if not text or text.endswith("\n") else "\n"
        assert result == f"{text}{separator}[truncated: showing first {shown} of {len(data)} bytes]"


# --- list_directory ---------------------------------------------------------------------------


@given(entries=st.dictionaries(file_names, st.booleans(), max_size=12))
def test_list_directory_lists_exactly_what_exists(entries: dict[str, bool]) -> None:
    """The listing is exactly the created files and directories, sorted, dirs with `/`."""
    with fresh_root() as root:
        for name, is_dir in entries.items():
            (root / name).mkdir() if is_dir else (root / name).write_text("")
        result = run(ListDirectoryTool(Workspace(root)), {})
        expected = [name + "/" if entries[name] else name for name in sorted(entries)]
        assert result == ("\n".join(expected) if expected else "(empty directory)")


@given(count=st.integers(1, 20), cap=st.integers(1, 20))
def test_list_directory_cap(count: int, cap: int) -> None:
    """At most `cap` entries are shown, and the note counts exactly the rest."""
    with fresh_root() as root:
        for index in range(count):
            (root / f"f{index:02}").write_text("")
        lines = run(ListDirectoryTool(Workspace(root), max_entries=cap), {}).split("\n")
        assert lines[: min(count, cap)] == [f"f{i:02}" for i in range(min(count, cap))]
        if count > cap:
            assert lines[cap:] == [f"[truncated: {count - cap} more entries not shown]"]
        else:
            assert len(lines) == count


# --- glob -------------------------------------------------------------------------------------


glob_segments = st.sampled_from(["*", "**", "a", "b", "?", "a*", "[ab]", "*b"])
glob_patterns = st.lists(glob_segments, min_size=1, max_size=4).filter(lambda s: s[-1] != "**")


@given(paths=tree_paths)
def test_glob_star_star_lists_every_file(paths: list[tuple[str, ...]]) -> None:
    """`**/*` names exactly the files that exist, relative to the root, sorted."""
    with fresh_root() as root:
        created = create_files(root, paths)
        result = run(GlobTool(Workspace(root)), {"pattern": "**/*"})
        assert result == ("\n".join(sorted(created)) if created else "No files match '**/*'.")


@given(paths=tree_paths, pattern=glob_patterns.map("/".join))
def test_glob_agrees_with_pathlib(paths: list[tuple[str, ...]], pattern: str) -> None:
    """On a plain tree, matches are the files `Path.glob` finds for the same pattern."""
    with fresh_root() as root:
        create_files(root, paths)
        expected = sorted(
            {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}
        )
        result = run(GlobTool(Workspace(root)), {"pattern": pattern})
        assert result == ("\n".join(expected) if expected else f"No files match {pattern!r}.")


@given(
    before=st.lists(glob_segments, max_size=3),
    after=st.lists(glob_segments, max_size=3),
)
def test_glob_patterns_with_dotdot_are_escapes(before: list[str], after: list[str]) -> None:
    """A `..` segment anywhere in a pattern is refused before any file is looked at."""
    with fresh_root() as root, pytest.raises(WorkspaceEscapeError):
        run(GlobTool(Workspace(root)), {"pattern": "/".join([*before, "..", *after])})


@given(paths=tree_paths, cap=st.integers(1, 6))
def test_glob_cap(paths: list[tuple[str, ...]], cap: int) -> None:
    """At most `cap` paths are shown, the first in sorted order, and the note counts the rest."""
    with fresh_root() as root:
        created = sorted(create_files(root, paths))
        assume(created)
        lines = run(GlobTool(Workspace(root), max_results=cap), {"pattern": "**/*"}).split("\n")
        assert lines[:cap] == created[:cap]
        rest = len(created) - cap
        assert lines[cap:] == ([f"[truncated: {rest} more files not shown]"] if rest > 0 else [])


link_kinds = st.sampled_from(["outside_dir", "outside_file", "root_parent", "loop", "inside"])


def make_links(root: Path, links: dict[str, str]) -> None:
    targets = {
        "outside_dir": root.parent / "outside",
        "outside_file": root.parent / "outside" / "secret.txt",
        "root_parent": root.parent,
        "loop": root,
        "inside": root / "a",
    }
    for name, kind in links.items():
        link = root / f"link_{name}"
        link.symlink_to(targets[kind])


@given(
    paths=tree_paths,
    links=st.dictionaries(names, link_kinds, max_size=4),
    pattern=st.sampled_from(["**/*", "*", "link_*/*", "**/secret.txt", "*/*/*"]),
)
def test_glob_never_names_outside_files(
    paths: list[tuple[str, ...]], links: dict[str, str], pattern: str
) -> None:
    """Whatever links exist, every path `glob` returns really lies inside the root."""
    with fresh_root() as root:
        create_files(root, paths)
        make_links(root, links)
        result = run(GlobTool(Workspace(root)), {"pattern": pattern})
        for line in result.split("\n"):
            if not line.startswith(("[", "No files")):
                assert (root / line).resolve().is_relative_to(root)


# --- search_file_content ----------------------------------------------------------------------


@given(
    paths=tree_paths,
    links=st.dictionaries(names, link_kinds, max_size=4),
    pattern=st.sampled_from(["needle", "OUTSIDE", ".", "^"]),
)
def test_search_never_names_outside_files(
    paths: list[tuple[str, ...]], links: dict[str, str], pattern: str
) -> None:
    """Whatever links exist, search results name only files inside and never outside text."""
    with fresh_root() as root:
        create_files(root, paths, content="needle inside\n")
        make_links(root, links)
        result = run(SearchFileContentTool(Workspace(root)), {"pattern": pattern})
        assert SECRET not in result
        for path in result_paths(result):
            if not path.startswith("No matches"):
                assert (root / path).resolve().is_relative_to(root)


line_text = st.text(alphabet="abc xy", max_size=12)


@given(
    files=st.dictionaries(
        st.lists(st.sampled_from("ab"), min_size=1, max_size=3).map(tuple),
        st.lists(line_text, max_size=5),
        max_size=5,
    ),
    token=st.text(alphabet="abcxy", min_size=1, max_size=2),
)
def test_search_finds_exactly_the_matching_lines(
    files: dict[tuple[str, ...], list[str]], token: str
) -> None:
    """A literal search returns each line containing the token, once, by path then line."""
    with fresh_root() as root:
        contents: dict[str, list[str]] = {}
        for parts in files:
            for path in create_files(root, [parts]):
                contents[path] = files[parts]
                (root / path).write_text("".join(line + "\n" for line in files[parts]))
        expected = [
            f"{path}:{number}: {line}"
            for path in sorted(contents)
            for number, line in enumerate(contents[path], start=1)
            if token in line
        ]
        result = run(SearchFileContentTool(Workspace(root)), {"pattern": re.escape(token)})
        assert result == ("\n".join(expected) if expected else f"No matches for {token!r}.")


@given(lines=st.integers(0, 30), cap=st.integers(1, 10))
def test_search_cap(lines: int, cap: int) -> None:
    """At most `cap` matches are shown, with a note exactly when there were more."""
    with fresh_root() as root:
        (root / "f.txt").write_text("hit\n" * lines)
        result = run(SearchFileContentTool(Workspace(root), max_matches=cap), {"pattern": "hit"})
        shown = [line for line in result.split("\n") if line.startswith("f.txt:")]
        assert len(shown) == min(lines, cap)
        assert ("[truncated:" in result) == (lines > cap)


@given(
    paths=tree_paths,
    extension=st.sampled_from(["txt", "py"]),
)
def test_search_include_limits_files(paths: list[tuple[str, ...]], extension: str) -> None:
    """With `include='*.ext'`, every result names a file with that extension."""
    with fresh_root() as root:
        for parts in paths:
            create_files(root, [(*parts[:-1], f"{parts[-1]}.txt")], content="hit\n")
            create_files(root, [(*parts[:-1], f"{parts[-1]}.py")], content="hit\n")
        result = run(
            SearchFileContentTool(Workspace(root)), {"pattern": "hit", "include": f"*.{extension}"}
        )
        found = [path for path in result_paths(result) if not path.startswith("No matches")]
        assert all(path.endswith(f".{extension}") for path in found)
        assert len(found) == len(list(root.rglob(f"*.{extension}")))
