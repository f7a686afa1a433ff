"""The confinement every workspace tool shares: one root, and no way out of it.

Every path a model supplies goes through `Workspace.resolve`, which follows symlinks before
checking the root, so no tool can reach outside the workspace by `..`, an absolute path or a
link. It lives apart from the tool families so each of them depends on the same single check
rather than on one another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from chatscope.errors import ConfigurationError, ToolError, WorkspaceEscapeError

__all__ = ["Workspace"]

# POSIX limits, for file systems that cannot say (`os.pathconf`): bytes per name, per path.
_DEFAULT_NAME_MAX = 255
_DEFAULT_PATH_MAX = 4096
_SHOWN_PATH_CHARS = 60


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory a chat's tools are confined to; `root` is stored resolved.

    `name_max` and `path_max` are the file system's limits (in bytes) under the root: a path
    over them is refused as a `ToolError` before any tool touches the file system.
    """

    root: Path
    name_max: int = field(init=False, repr=False, compare=False)
    path_max: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        resolved = Path(self.root).resolve()
        if not resolved.is_dir():
            raise ConfigurationError(f"workspace root {self.root} is not an existing directory")
        object.__setattr__(self, "root", resolved)
        object.__setattr__(self, "name_max", _limit(resolved, "PC_NAME_MAX", _DEFAULT_NAME_MAX))
        object.__setattr__(self, "path_max", _limit(resolved, "PC_PATH_MAX", _DEFAULT_PATH_MAX))

    def resolve(self, relative: str) -> Path:
        """The real path `relative` names, refused unless it lies inside the root and fits the
        file system's length limits."""
        if "\0" in relative:
            raise ToolError(f"path {_shown(relative)} contains a NUL byte")
        candidate = Path(relative) if relative else self.root
        try:
            resolved = (self.root / candidate).resolve()
        except (OSError, RuntimeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else None
            problem = reason or "a symlink loop"  # RuntimeError: Path.resolve's loop
            raise ToolError(f"cannot resolve path {_shown(relative)}: {problem}") from exc
        if not resolved.is_relative_to(self.root):
            raise WorkspaceEscapeError(
                f"path {_shown(relative)} is outside the workspace root {self.root}"
            )
        self._check_length(resolved, relative)
        return resolved

    def _check_length(self, resolved: Path, relative: str) -> None:
        """Refuse a path whose names or whole length the file system cannot take."""
        longest = max((len(os.fsencode(part)) for part in resolved.parts), default=0)
        if longest > self.name_max:
            raise ToolError(
                f"path {_shown(relative)} is too long for the file system: a name of "
                f"{longest} bytes, at most {self.name_max}"
            )
        total = len(os.fsencode(resolved))
        if total >= self.path_max:
            raise ToolError(
                f"path {_shown(relative)} is too long for the file system: {total} bytes "
                f"in full, fewer than {self.path_max}"
            )

    def contains(self, path: Path) -> bool:
        """Whether `path`, with every symlink followed, lies inside the root."""
        try:
            return path.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):
            return False

    def display(self, path: Path) -> str:
        """`path` as the model should see it: relative to the root, with `/` separators."""
        return path.relative_to(self.root).as_posix()


def _limit(root: Path, name: str, default: int) -> int:
    """A length limit of the file system holding `root` (the POSIX value where it cannot say)."""
    try:
        value = os.pathconf(root, name)
    except (OSError, ValueError, AttributeError):
        return default
    return value if value > 0 else default


def _shown(path: str) -> str:
    """`path` quoted for a message, its middle cut if it is long."""
    if len(path) <= _SHOWN_PATH_CHARS:
        return repr(path)
    half = _SHOWN_PATH_CHARS // 2
    return f"{path[:half]!r}...{path[-half:]!r} ({len(path)} characters)"
