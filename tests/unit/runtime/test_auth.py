"""Per-call credential resolution: explicit key, key file, environment, else none (REQ-SP4-003)."""

from __future__ import annotations

import errno
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.errors import AuthenticationRequiredError, ConfigurationError
from chatscope.services.runtime.auth import STANDARD_KEY_VARIABLES, AuthResolver, AuthSpec
from chatscope.services.runtime.invocation import AuthType, Credentials

PROVIDERS = sorted(STANDARD_KEY_VARIABLES)
ALL_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
WHITESPACE = " \t\n\r\x0b\x0c"

# Keys carry a marker no repr, message or path holds by accident, so "not shown" can fail.
keys = st.builds(
    "Kq7{}".format,
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=9, max_size=37),
)
blanks = st.text(alphabet=WHITESPACE, max_size=6)
padded_keys = st.builds(lambda left, key, right: left + key + right, blanks, keys, blanks)
# None means "absent"; otherwise a value that may be empty, blank or a key padded with blanks.
optional_values = st.one_of(st.none(), st.just(""), blanks, padded_keys)
environs = st.dictionaries(st.sampled_from(ALL_KEY_VARIABLES), st.one_of(blanks, padded_keys))


def _first_non_empty(
    explicit: str | None,
    file_content: str | None,
    environ: dict[str, str],
    names: tuple[str, ...],
) -> str | None:
    """The reference precedence: explicit key, trimmed key file, trimmed env vars in order."""
    candidates = [explicit or None, file_content]
    candidates.extend(environ.get(name) for name in names)
    for candidate in candidates:
        if candidate is not None and candidate.strip(WHITESPACE):
            return candidate.strip(WHITESPACE)
    return None


def _spec_with_file(
    tmp_path: Path,
    provider: str,
    explicit: str | None,
    file_content: str | None,
    *,
    required: bool = True,
) -> AuthSpec:
    key_file = None
    if file_content is not None:
        key_file = tmp_path / "api.key"
        key_file.write_text(file_content, encoding="utf-8")
    api_key = SecretStr(explicit) if explicit is not None else None
    return AuthSpec.for_provider(provider, api_key=api_key, key_file=key_file, required=required)


# --- precedence, one step at a time ---------------------------------------------------------


def test_explicit_key_wins_over_key_file_and_environment(tmp_path: Path) -> None:
    """A key given for the scope is used even when a key file and env variable also hold one."""
    key_file = tmp_path / "key"
    key_file.write_text("file-key-000000", encoding="utf-8")
    spec = AuthSpec.for_provider(
        "openai", api_key=SecretStr("explicit-key-0000"), key_file=key_file
    )
    credentials = AuthResolver({"OPENAI_API_KEY": "env-key-000000"}).resolve(spec)
    assert credentials.secret() == "explicit-key-0000"
    assert credentials.auth_type is AuthType.API_KEY


def test_explicit_key_means_the_key_file_is_never_read(tmp_path: Path) -> None:
    """With an explicit key, a missing key file is not an error: the file is not consulted."""
    spec = AuthSpec.for_provider(
        "anthropic", api_key=SecretStr("explicit-key-0000"), key_file=tmp_path / "missing"
    )
    assert AuthResolver({}).resolve(spec).secret() == "explicit-key-0000"


def test_key_file_wins_over_environment_and_is_trimmed(tmp_path: Path) -> None:
    """Without an explicit key the key file's trimmed contents are used before the env."""
    key_file = tmp_path / "key"
    key_file.write_text("\n  file-key-000000 \t\n", encoding="utf-8")
    spec = AuthSpec.for_provider("openai", key_file=key_file)
    credentials = AuthResolver({"OPENAI_API_KEY": "env-key-000000"}).resolve(spec)
    assert credentials.secret() == "file-key-000000"


@given(content=blanks, env_key=keys)
def test_blank_key_file_falls_through_to_the_environment(
    tmp_path: Path, content: str, env_key: str
) -> None:
    """An empty or blank key file means "no key here", not an empty key."""
    key_file = tmp_path / "blank.key"
    key_file.write_text(content, encoding="utf-8")
    spec = AuthSpec.for_provider("openai", key_file=key_file)
    assert AuthResolver({"OPENAI_API_KEY": env_key}).resolve(spec).secret() == env_key


def test_empty_explicit_key_falls_through_to_the_environment() -> None:
    """An explicit key that is the empty string counts as no key."""
    spec = AuthSpec.for_provider("openai", api_key=SecretStr(""))
    assert AuthResolver({"OPENAI_API_KEY": "env-key-000000"}).resolve(spec).secret() == (
        "env-key-000000"
    )


@given(blank=blanks, google_value=padded_keys)
def test_blank_environment_value_is_skipped_and_the_next_one_trimmed(
    blank: str, google_value: str
) -> None:
    """A blank variable does not count as set; the next one is used without its padding."""
    environ = {"GEMINI_API_KEY": blank, "GOOGLE_API_KEY": google_value}
    credentials = AuthResolver(environ).resolve(AuthSpec.for_provider("gemini"))
    assert credentials.secret() == google_value.strip(WHITESPACE)


def test_gemini_prefers_gemini_api_key_over_google_api_key() -> None:
    """Both Gemini variables set: `GEMINI_API_KEY` is the one used."""
    spec = AuthSpec.for_provider("gemini")
    environ = {"GOOGLE_API_KEY": "google-key-000000", "GEMINI_API_KEY": "gemini-key-000000"}
    assert AuthResolver(environ).resolve(spec).secret() == "gemini-key-000000"


def test_gemini_falls_back_to_google_api_key() -> None:
    """Only `GOOGLE_API_KEY` set: Gemini uses it."""
    spec = AuthSpec.for_provider("gemini")
    assert AuthResolver({"GOOGLE_API_KEY": "google-key-000000"}).resolve(spec).secret() == (
        "google-key-000000"
    )


@given(provider=st.sampled_from(PROVIDERS), key=keys)
def test_other_providers_variables_are_never_used(provider: str, key: str) -> None:
    """A key under another provider's variables does not authenticate this provider."""
    spec = AuthSpec.for_provider(provider)
    environ = {name: key for name in ALL_KEY_VARIABLES if name not in spec.env_vars}
    with pytest.raises(AuthenticationRequiredError):
        AuthResolver(environ).resolve(spec)


def test_no_key_anywhere_raises_naming_every_place_looked(tmp_path: Path) -> None:
    """The error lists the scope's key, the key file and each variable, in lookup order."""
    key_file = tmp_path / "key"
    key_file.write_text("  \n", encoding="utf-8")
    spec = AuthSpec.for_provider("gemini", key_file=key_file)
    with pytest.raises(AuthenticationRequiredError) as caught:
        AuthResolver({"GEMINI_API_KEY": " "}).resolve(spec)
    error = caught.value
    assert error.provider == "gemini"
    assert error.looked_in == (
        "the scope's api_key",
        f"key file {key_file}",
        "$GEMINI_API_KEY",
        "$GOOGLE_API_KEY",
    )
    assert str(error) == (
        "no API key for provider 'gemini'; looked in: the scope's api_key, "
        f"key file {key_file}, $GEMINI_API_KEY, $GOOGLE_API_KEY"
    )


def test_no_key_without_key_file_names_only_the_scope_and_variables() -> None:
    """Without a key file configured, none is mentioned among the places looked."""
    with pytest.raises(AuthenticationRequiredError) as caught:
        AuthResolver({}).resolve(AuthSpec.for_provider("openai"))
    assert caught.value.looked_in == ("the scope's api_key", "$OPENAI_API_KEY")


@given(provider=st.sampled_from(PROVIDERS), file_content=st.one_of(st.none(), blanks), blank=blanks)
def test_not_required_and_no_key_gives_empty_credentials(
    tmp_path: Path, provider: str, file_content: str | None, blank: str
) -> None:
    """A local server needs no key: nothing found gives `Credentials(None)`, auth type none."""
    spec = _spec_with_file(tmp_path, provider, None, file_content, required=False)
    credentials = AuthResolver(dict.fromkeys(spec.env_vars, blank)).resolve(spec)
    assert credentials == Credentials(None)
    assert credentials.auth_type is AuthType.NONE
    assert credentials.secret() is None


def test_not_required_still_uses_a_key_that_is_found() -> None:
    """`required=False` does not ignore a key the environment supplies."""
    spec = AuthSpec.for_provider("openai", required=False)
    credentials = AuthResolver({"OPENAI_API_KEY": "env-key-000000"}).resolve(spec)
    assert credentials.secret() == "env-key-000000"
    assert credentials.auth_type is AuthType.API_KEY


@given(
    provider=st.text(min_size=1, max_size=20).filter(lambda name: name not in PROVIDERS),
    key=keys,
)
def test_unknown_provider_looks_at_no_environment_variable(provider: str, key: str) -> None:
    """A provider without standard variables looks only at its own key and key file."""
    spec = AuthSpec.for_provider(provider, required=False)
    assert spec.env_vars == ()
    environ = dict.fromkeys(ALL_KEY_VARIABLES, key)
    assert AuthResolver(environ).resolve(spec) == Credentials(None)


@given(
    provider=st.sampled_from(PROVIDERS),
    explicit=keys,
    environ=environs,
    required=st.booleans(),
)
def test_explicit_key_always_wins_and_the_key_file_is_not_read(
    tmp_path: Path, provider: str, explicit: str, environ: dict[str, str], required: bool
) -> None:
    """With an explicit key, neither the (missing) key file nor the environment is consulted."""
    spec = AuthSpec.for_provider(
        provider,
        api_key=SecretStr(explicit),
        key_file=tmp_path / "does-not-exist",
        required=required,
    )
    assert AuthResolver(environ).resolve(spec).secret() == explicit


# --- the key file is read at call time ------------------------------------------------------


def test_key_file_is_reread_on_every_resolve(tmp_path: Path) -> None:
    """Rotating the key in the file is seen by the very next call: nothing is cached."""
    key_file = tmp_path / "key"
    key_file.write_text("first-key-000000", encoding="utf-8")
    resolver = AuthResolver({})
    spec = AuthSpec.for_provider("openai", key_file=key_file)
    assert resolver.resolve(spec).secret() == "first-key-000000"
    key_file.write_text("second-key-000000", encoding="utf-8")
    assert resolver.resolve(spec).secret() == "second-key-000000"


def test_key_file_emptied_between_calls_falls_through(tmp_path: Path) -> None:
    """A key file emptied after a first call gives way to the environment on the next."""
    key_file = tmp_path / "key"
    key_file.write_text("first-key-000000", encoding="utf-8")
    resolver = AuthResolver({"OPENAI_API_KEY": "env-key-000000"})
    spec = AuthSpec.for_provider("openai", key_file=key_file)
    assert resolver.resolve(spec).secret() == "first-key-000000"
    key_file.write_text("", encoding="utf-8")
    assert resolver.resolve(spec).secret() == "env-key-000000"


def test_key_file_deleted_between_calls_is_a_configuration_error(tmp_path: Path) -> None:
    """A configured key file that disappears is reported, not skipped for the environment."""
    key_file = tmp_path / "key"
    key_file.write_text("first-key-000000", encoding="utf-8")
    resolver = AuthResolver({"OPENAI_API_KEY": "env-key-000000"})
    spec = AuthSpec.for_provider("openai", key_file=key_file)
    assert resolver.resolve(spec).secret() == "first-key-000000"
    key_file.unlink()
    with pytest.raises(ConfigurationError) as caught:
        resolver.resolve(spec)
    assert str(caught.value) == f"cannot read key file {str(key_file)!r}: No such file or directory"


def test_key_file_that_is_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    """A key file path naming a directory fails naming the path."""
    spec = AuthSpec.for_provider("openai", key_file=tmp_path)
    with pytest.raises(ConfigurationError, match="cannot read key file") as caught:
        AuthResolver({}).resolve(spec)
    assert repr(str(tmp_path)) in str(caught.value)


def test_unreadable_key_file_error_names_path_never_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A permission failure names the path and reason, and chains to nothing holding the key."""
    key_file = tmp_path / "key"
    key_file.write_text("file-key-000000", encoding="utf-8")

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ConfigurationError) as caught:
        AuthResolver({}).resolve(AuthSpec.for_provider("openai", key_file=key_file))
    assert str(caught.value) == f"cannot read key file {str(key_file)!r}: Permission denied"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_non_utf8_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A key file that is not UTF-8 text is unreadable as a key and reported as configuration."""
    key_file = tmp_path / "key"
    key_file.write_bytes(b"\xff\xfefile-key-000000")
    with pytest.raises(ConfigurationError, match="cannot read key file"):
        AuthResolver({}).resolve(AuthSpec.for_provider("openai", key_file=key_file))


@given(
    name=st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1).filter(
        lambda name: name not in (".", "..")
    ),
    key=padded_keys,
)
def test_key_file_tilde_is_expanded_against_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, key: str
) -> None:
    """`~/name` key files are read from the user's home directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / name).write_text(key, encoding="utf-8")
    spec = AuthSpec.for_provider("openai", key_file=Path("~") / name)
    assert AuthResolver({}).resolve(spec).secret() == key.strip(WHITESPACE)


def test_missing_tilde_key_file_error_names_the_expanded_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read error shows where the file was really looked for."""
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = AuthSpec.for_provider("openai", key_file=Path("~/absent-key"))
    with pytest.raises(ConfigurationError) as caught:
        AuthResolver({}).resolve(spec)
    assert repr(str(tmp_path / "absent-key")) in str(caught.value)


# --- specs and credentials ------------------------------------------------------------------


def test_standard_key_variables_are_the_documented_ones() -> None:
    """Each provider falls back to its own standard key variables, in documented order."""
    assert dict(STANDARD_KEY_VARIABLES) == {
        "openai": ("OPENAI_API_KEY",),
        "openai-responses": ("OPENAI_API_KEY",),
        "anthropic": ("ANTHROPIC_API_KEY",),
        "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    }


@given(
    provider=st.one_of(st.sampled_from(PROVIDERS), st.text(max_size=20)),
    explicit=st.one_of(st.none(), keys),
    key_file=st.one_of(st.none(), st.just(Path("~/key")), st.just(Path("/etc/key"))),
    required=st.booleans(),
)
def test_for_provider_adds_the_standard_variables_and_keeps_the_rest(
    provider: str, explicit: str | None, key_file: Path | None, required: bool
) -> None:
    """`for_provider` fills in exactly the provider's variables and passes the other parts on."""
    api_key = None if explicit is None else SecretStr(explicit)
    spec = AuthSpec.for_provider(provider, api_key=api_key, key_file=key_file, required=required)
    env_vars = STANDARD_KEY_VARIABLES.get(provider, ())
    assert spec == AuthSpec(provider, api_key, key_file, env_vars, required)
    assert spec.auth_type == (AuthType.API_KEY if required else AuthType.NONE)


def test_standard_key_variables_cannot_be_mutated() -> None:
    """The provider → variables table is read-only, so no caller can redirect lookups."""
    with pytest.raises(TypeError):
        STANDARD_KEY_VARIABLES["openai"] = ("EVIL",)  # type: ignore[index]


def test_credentials_hide_the_key_but_secret_returns_it() -> None:
    """`repr` and `str` mask the key; only `secret()` gives the plain text."""
    credentials = Credentials(SecretStr("sk-plain-text-key-123456"))
    assert "sk-plain-text-key-123456" not in repr(credentials)
    assert "sk-plain-text-key-123456" not in str(credentials)
    assert "**********" in repr(credentials)
    assert credentials.secret() == "sk-plain-text-key-123456"
    assert credentials.auth_type is AuthType.API_KEY


def test_default_credentials_have_no_key() -> None:
    """`Credentials()` is the no-auth value."""
    assert Credentials().secret() is None
    assert Credentials().auth_type == "none"


# --- properties -----------------------------------------------------------------------------


@given(
    provider=st.sampled_from(PROVIDERS),
    explicit=st.one_of(st.none(), st.just(""), keys),
    file_content=optional_values,
    environ=environs,
    required=st.booleans(),
)
def test_resolved_key_is_the_first_non_empty_source(
    tmp_path: Path,
    provider: str,
    explicit: str | None,
    file_content: str | None,
    environ: dict[str, str],
    required: bool,
) -> None:
    """Whatever is set where, the key comes from the first source in precedence order."""
    spec = _spec_with_file(tmp_path, provider, explicit, file_content, required=required)
    expected = _first_non_empty(explicit, file_content, environ, spec.env_vars)
    resolver = AuthResolver(environ)
    if expected is None and required:
        with pytest.raises(AuthenticationRequiredError):
            resolver.resolve(spec)
    else:
        assert resolver.resolve(spec).secret() == expected


@given(
    provider=st.sampled_from(PROVIDERS),
    file_content=st.one_of(st.none(), blanks),
    other_keys=st.dictionaries(st.sampled_from(ALL_KEY_VARIABLES), padded_keys),
    blank=blanks,
)
def test_no_key_appears_in_a_required_error_message(
    tmp_path: Path,
    provider: str,
    file_content: str | None,
    other_keys: dict[str, str],
    blank: str,
) -> None:
    """A failed resolution names exactly the places looked and shows no key from anywhere."""
    spec = _spec_with_file(tmp_path, provider, "", file_content)
    environ = {name: key for name, key in other_keys.items() if name not in spec.env_vars}
    environ.update(dict.fromkeys(spec.env_vars, blank))
    with pytest.raises(AuthenticationRequiredError) as caught:
        AuthResolver(environ).resolve(spec)
    file_place = () if spec.key_file is None else (f"key file {spec.key_file}",)
    env_places = tuple(f"${name}" for name in spec.env_vars)
    assert caught.value.looked_in == ("the scope's api_key", *file_place, *env_places)
    for key in other_keys.values():
        assert key.strip(WHITESPACE) not in str(caught.value)


@given(
    provider=st.sampled_from([*PROVIDERS, "local"]),
    key=keys,
    required=st.booleans(),
)
def test_no_key_appears_in_spec_or_credentials_repr(
    provider: str, key: str, required: bool
) -> None:
    """An explicit key is hidden in the spec's and the resolved credentials' repr and str."""
    spec = AuthSpec.for_provider(provider, api_key=SecretStr(key), required=required)
    credentials = AuthResolver({}).resolve(spec)
    assert credentials.secret() == key
    for shown in (repr(spec), str(spec), repr(credentials), str(credentials)):
        assert key not in shown


@given(
    provider=st.sampled_from(PROVIDERS),
    explicit=st.one_of(st.none(), keys),
    file_content=optional_values,
    environ=environs,
)
def test_resolving_twice_gives_equal_credentials(
    tmp_path: Path,
    provider: str,
    explicit: str | None,
    file_content: str | None,
    environ: dict[str, str],
) -> None:
    """Resolution is a pure function of its inputs: the same spec twice gives equal results."""
    spec = _spec_with_file(tmp_path, provider, explicit, file_content, required=False)
    resolver = AuthResolver(environ)
    first = resolver.resolve(spec)
    assert resolver.resolve(spec) == first
    assert AuthResolver(dict(environ)).resolve(spec) == first


@given(provider=st.sampled_from(PROVIDERS), before=keys, after=keys)
def test_changes_to_the_given_environ_are_seen_by_the_next_call(
    provider: str, before: str, after: str
) -> None:
    """The resolver reads the mapping it was given at each call; it keeps no copy."""
    environ: dict[str, str] = {}
    resolver = AuthResolver(environ)
    spec = AuthSpec.for_provider(provider, required=False)
    name = spec.env_vars[-1]
    assert resolver.resolve(spec) == Credentials(None)
    environ[name] = before
    assert resolver.resolve(spec).secret() == before
    environ[name] = after
    assert resolver.resolve(spec).secret() == after
    del environ[name]
    assert resolver.resolve(spec) == Credentials(None)


@given(first=padded_keys, second=st.one_of(blanks, padded_keys))
def test_key_file_rotation_is_always_seen(tmp_path: Path, first: str, second: str) -> None:
    """What the file holds at the second call decides it: a new key, or blank to fall through."""
    key_file = tmp_path / "rotating.key"
    spec = AuthSpec.for_provider("anthropic", key_file=key_file)
    resolver = AuthResolver({"ANTHROPIC_API_KEY": "env-key-000000"})
    key_file.write_text(first, encoding="utf-8")
    assert resolver.resolve(spec).secret() == first.strip(WHITESPACE)
    key_file.write_text(second, encoding="utf-8")
    assert resolver.resolve(spec).secret() == (second.strip(WHITESPACE) or "env-key-000000")
