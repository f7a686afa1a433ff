"""Presets for OpenAI-compatible servers: the table, and keys that never go to the wrong host."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.presets import PRESETS, get_preset
from chatscope.errors import AuthenticationRequiredError, ConfigurationError
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import build_test_app

KEYED = sorted(name for name, preset in PRESETS.items() if preset.key_variable)
LOCAL = sorted(name for name, preset in PRESETS.items() if not preset.key_variable)
WITH_MODEL = sorted(name for name, preset in PRESETS.items() if preset.default_model)
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=8, max_size=30)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_well_formed(name: str) -> None:
    """An https endpoint with its own key variable, or a keyless server on this machine."""
    preset = PRESETS[name]
    assert preset.name == name
    assert not preset.base_url.endswith("/")
    if preset.key_variable:
        assert preset.base_url.startswith("https://")
        assert preset.key_variable.endswith("_API_KEY")
        assert preset.key_variable != "OPENAI_API_KEY"
    else:
        assert preset.base_url.startswith("http://127.0.0.1:")
    assert preset.auth_required is bool(preset.key_variable)


def test_an_unknown_preset_is_a_configuration_error_listing_the_known() -> None:
    """The message names the typo and every preset there is."""
    with pytest.raises(ConfigurationError, match="'openruoter'") as caught:
        get_preset("openruoter")
    assert all(name in str(caught.value) for name in PRESETS)


@given(
    name=st.sampled_from(sorted(set(KEYED) & set(WITH_MODEL))),
    own_key=st.none() | KEYS,
    openai_key=KEYS,
)
def test_a_keyed_preset_reads_only_its_own_variable(
    tmp_path_factory: pytest.TempPathFactory, name: str, own_key: str | None, openai_key: str
) -> None:
    """With OPENAI_API_KEY set, a preset whose variable is unset fails rather than send it."""
    preset = PRESETS[name]
    assert preset.key_variable is not None
    environ = {"OPENAI_API_KEY": openai_key} | ({preset.key_variable: own_key} if own_key else {})
    app = build_test_app(workspace=tmp_path_factory.mktemp("ws"), environ=environ)
    context = app.runtime.scopes().foreground(ScopeRequest.from_preset(preset))
    assert (context.state.base_url, context.state.model) == (preset.base_url, preset.default_model)
    resolver = AuthResolver(environ)
    if own_key is None:
        with pytest.raises(AuthenticationRequiredError, match=preset.key_variable):
            resolver.resolve(context.auth)
    else:
        assert resolver.resolve(context.auth).secret() == own_key


@given(name=st.sampled_from(LOCAL), openai_key=KEYS)
def test_a_local_preset_sends_no_key_at_all(
    tmp_path_factory: pytest.TempPathFactory, name: str, openai_key: str
) -> None:
    """A local server needs no key, and is not handed the OpenAI one."""
    request = ScopeRequest.from_preset(PRESETS[name], model="served-model")
    app = build_test_app(workspace=tmp_path_factory.mktemp("ws"), environ={})
    context = app.runtime.scopes().foreground(request)
    assert AuthResolver({"OPENAI_API_KEY": openai_key}).resolve(context.auth).secret() is None


@given(name=st.sampled_from(sorted(PRESETS)), model=st.none() | KEYS, base=st.none() | KEYS)
def test_explicit_model_and_base_url_win_over_the_preset(
    name: str, model: str | None, base: str | None
) -> None:
    """Flags override; a preset without a default model demands one, naming the preset."""
    preset = PRESETS[name]
    base_url = f"http://127.0.0.1:9/{base}" if base else None
    if model is None and preset.default_model is None:
        with pytest.raises(ConfigurationError, match=f"{name!r}.*--model"):
            ScopeRequest.from_preset(preset, model=model, base_url=base_url)
        return
    request = ScopeRequest.from_preset(preset, model=model, base_url=base_url)
    assert request.model == (model or preset.default_model)
    assert request.base_url == (base_url or preset.base_url)
    assert request.provider == "openai"


def test_presets_need_no_workspace_state(tmp_path: Path) -> None:
    """Building a preset scope touches nothing on disk."""
    app = build_test_app(workspace=tmp_path, environ={})
    app.runtime.scopes().foreground(ScopeRequest.from_preset(get_preset("ollama")))
    assert list(tmp_path.iterdir()) == []
