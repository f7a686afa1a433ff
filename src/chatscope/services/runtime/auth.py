"""Per-call credential resolution (REQ-SP4-003): keys are looked up for each call, never cached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from pydantic import SecretStr

from chatscope.errors import AuthenticationRequiredError, ConfigurationError
from chatscope.services.runtime.invocation import AuthType, Credentials

__all__ = ["STANDARD_KEY_VARIABLES", "AuthResolver", "AuthSpec"]

STANDARD_KEY_VARIABLES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "openai": ("OPENAI_API_KEY",),
        "openai-responses": ("OPENAI_API_KEY",),
        "anthropic": ("ANTHROPIC_API_KEY",),
        "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    }
)


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """Where a scope's key may come from, in order; holds no resolved secret of its own.

    `api_key` is a key given explicitly for this scope or profile (a `SecretStr`).
    """

    provider: str
    api_key: SecretStr | None = None
    key_file: Path | None = None
    env_vars: tuple[str, ...] = ()
    required: bool = True

    @classmethod
    def for_provider(
        cls,
        provider: str,
        *,
        api_key: SecretStr | None = None,
        key_file: Path | None = None,
        required: bool = True,
    ) -> AuthSpec:
        """A spec that falls back to the provider's standard environment variables."""
        env_vars = STANDARD_KEY_VARIABLES.get(provider, ())
        return cls(provider, api_key, key_file, env_vars, required)

    @property
    def auth_type(self) -> AuthType:
        """What the scope is configured to use (the resolved call may still find no key)."""
        return AuthType.API_KEY if self.required else AuthType.NONE


class AuthResolver:
    """Resolves an `AuthSpec` at call time: explicit key, key file, environment, else none.

    `environ` is the environment snapshot taken at the entry point, so tests and embedding
    applications decide what "the environment" is.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def resolve(self, spec: AuthSpec) -> Credentials:
        """The credentials for one call; raises when a required key is nowhere to be found,
        and `ConfigurationError` for a key no HTTP header can carry (see `_check_sendable`)."""
        found = _explicit(spec.api_key) or _read_key_file(spec.key_file)
        found = found or self._from_environ(spec.env_vars)
        if found is None:
            if spec.required:
                raise AuthenticationRequiredError(spec.provider, _places_looked(spec))
            return Credentials(None)
        key, source = found
        _check_sendable(key, spec.provider, source)
        return Credentials(key)

    def _from_environ(self, names: tuple[str, ...]) -> _Found | None:
        for name in names:
            value = self._environ.get(name, "").strip()
            if value:
                return SecretStr(value), f"${name}"
        return None


_Found = tuple[SecretStr, str]
"""A key and where it was found (for messages; never the key itself)."""


def _check_sendable(key: SecretStr, provider: str, source: str) -> None:
    """Refuse a key that cannot be sent: a header takes printable ASCII only.

    A line break or a typographic character pasted into a key is a local mistake; sent, it
    fails as a network error (retried for minutes) or crashes the request. The message says
    where the key came from, never the key nor the offending character.
    """
    value = key.get_secret_value()
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        problem = "a line break or another control character"
    elif not value.isascii():
        problem = "a non-ASCII character"
    else:
        return
    raise ConfigurationError(
        f"the API key for provider {provider!r} from {source} contains {problem}; "
        "an HTTP header cannot carry it (check the key for pasted extra characters)"
    )


def _read_key_file(path: Path | None) -> _Found | None:
    if path is None:
        return None
    expanded = path.expanduser()
    try:
        content = expanded.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read key file {str(expanded)!r}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"cannot read key file {str(expanded)!r}: not UTF-8 text"
        ) from None
    return (SecretStr(content), f"key file {str(expanded)!r}") if content else None


def _explicit(key: SecretStr | None) -> _Found | None:
    """An explicit key, trimmed like the other sources; blank counts as none."""
    if key is None:
        return None
    value = key.get_secret_value().strip()
    return (SecretStr(value), "the scope's api_key") if value else None


def _places_looked(spec: AuthSpec) -> tuple[str, ...]:
    places = ["the scope's api_key"]
    if spec.key_file is not None:
        places.append(f"key file {spec.key_file}")
    places.extend(f"${name}" for name in spec.env_vars)
    return tuple(places)
