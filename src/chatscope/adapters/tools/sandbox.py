"""The confinement every workspace tool shares: one root, and no way out of it.

Every path a model supplies goes through `Workspace.resolve`, which follows symlinks before
checking the root, so no tool can reach outside the workspace by `..`, an absolute path or a
link. It lives apart from the tool families so each of them depends on the same single check
rather than on one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chatscope.errors import ConfigurationError, ToolError, WorkspaceEscapeError

__all__ = ["Workspace"]


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
