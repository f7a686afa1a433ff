"""What `ScopeFactory` takes from settings and from the request, field by field.

Every field of a scope's state and auth spec comes either from the request or from the
provider's settings section; these tests pin each source so that a dropped or swapped field
fails here rather than only against a real provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.presets import PRESETS
from chatscope.config.settings import FallbackMember, FallbackSettings
from chatscope.errors import ConfigurationError
from chatscope.services.frozen import FrozenDict, thaw
from chatscope.services.runtime.fallback import FallbackChains
from chatscope.services.runtime.invocation import AuthType
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.scopes import ScopeFactory, ScopeRequest
from chatscope.testing.fakes import ScriptedProvider
from tests.support.scopes import make_scope_factory

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6)
params = st.dictionaries(
    st.text(min_size=1, max_size=8), scalars | st.lists(scalars, max_size=3), max_size=4
)
file_names = st.text(alphabet="abcdefghij_-", min_size=1, max_size=10)


def _factory(workspace: Path, **openai: Any) -> ScopeFactory:
    return make_scope_factory(
        ScriptedProvider([], name="openai"),
        sink=RecordingSink(),
        workspace=workspace,
        provider="openai",
        providers={"openai": openai},
    )


@given(name=file_names)
def test_the_settings_key_file_is_used_when_the_request_has_none(tmp_path: Path, name: str) -> None:
    """A provider section's key file is where the scope's key is looked for."""
    key_file = tmp_path / name
    context = _factory(tmp_path, key_file=key_file).foreground()
    assert context.auth.key_file == key_file


@given(settings_name=file_names, request_name=file_names)
def test_a_requested_key_file_wins_over_the_settings_one(
    tmp_path: Path, settings_name: str, request_name: str
) -> None:
    """The request's key file replaces the configured one for this scope only."""
    scopes = _factory(tmp_path, key_file=tmp_path / "settings" / settings_name)
    requested = tmp_path / "request" / request_name
    assert scopes.foreground(ScopeRequest(key_file=requested)).auth.key_file == requested
    assert scopes.foreground().auth.key_file == tmp_path / "settings" / settings_name


@given(required=st.booleans())
def test_auth_required_sets_the_spec_and_the_state_auth_type(
    tmp_path: Path, required: bool
) -> None:
    """`auth_required` decides both whether a key must be found and the state's auth type."""
    context = _factory(tmp_path, auth_required=required).foreground()
    assert context.auth.required is required
    assert context.state.auth_type is (AuthType.API_KEY if required else AuthType.NONE)


@given(model_params=params)
def test_requested_model_params_reach_the_state_frozen(
    tmp_path: Path, model_params: dict[str, Any]
) -> None:
    """Params given to `ScopeRequest.create` are the state's params, deeply frozen."""
    request = ScopeRequest.create(model_params=model_params)
    state = _factory(tmp_path).foreground(request).state
    assert isinstance(state.model_params, FrozenDict)
    assert thaw(state.model_params) == thaw(model_params)


@given(overrides=st.fixed_dictionaries({}, optional={"context-limit": st.integers(1, 10**6)}))
def test_scope_request_create_freezes_ephemeral_overrides(overrides: dict[str, int]) -> None:
    """Both mappings of a request are frozen copies equal to what was passed."""
    request = ScopeRequest.create(ephemeral_overrides=overrides)
    assert isinstance(request.ephemeral_overrides, FrozenDict)
    assert dict(request.ephemeral_overrides) == overrides
    assert isinstance(request.model_params, FrozenDict)


@given(prompt=st.none() | st.text(max_size=30))
def test_the_requested_system_prompt_reaches_the_context(
    tmp_path: Path, prompt: str | None
) -> None:
    """A scope is built with the system prompt its request carries."""
    context = _factory(tmp_path).foreground(ScopeRequest(system_prompt=prompt))
    assert context.system_prompt == prompt


def test_base_url_comes_from_settings_unless_requested(tmp_path: Path) -> None:
    """The configured base URL applies unless the request names another."""
    scopes = _factory(tmp_path, base_url="http://127.0.0.1:9/v1")
    assert scopes.foreground().state.base_url == "http://127.0.0.1:9/v1"
    requested = ScopeRequest(base_url="http://127.0.0.1:8/v1")
    assert scopes.foreground(requested).state.base_url == "http://127.0.0.1:8/v1"


@given(
    name=st.sampled_from(sorted(PRESETS)),
    provider=st.none() | st.sampled_from(["openai", "openai-responses"]),
)
def test_a_requested_provider_overrides_the_presets(name: str, provider: str | None) -> None:
    """`from_preset` fields win over the preset's own, the provider included."""
    request = ScopeRequest.from_preset(PRESETS[name], provider=provider, model="served-model")
    assert request.provider == (provider or PRESETS[name].provider)
    assert request.base_url == PRESETS[name].base_url


@given(name=st.sampled_from(sorted(n for n, p in PRESETS.items() if p.default_model is None)))
def test_a_preset_without_a_model_says_how_to_name_one(name: str) -> None:
    """A server that serves whatever it was started with needs `--model`, and says so."""
    with pytest.raises(ConfigurationError) as raised:
        ScopeRequest.from_preset(PRESETS[name])
    assert str(raised.value).endswith("name it with --model")
    assert repr(name) in str(raised.value)


BACKUP = {"provider": "openai", "model": "backup-model"}


def test_a_requests_own_chain_is_kept_when_the_settings_have_one_too(tmp_path: Path) -> None:
    """A foreground request with a chain of its own (a profile's) gets that chain, not the
    settings' one, even on the default endpoint."""
    scopes = make_scope_factory(
        ScriptedProvider([], name="openai"),
        sink=RecordingSink(),
        workspace=tmp_path,
        provider="openai",
        fallback={"mode": "failover", "members": [BACKUP]},
    )
    own = FallbackSettings(mode="round-robin", members=(FallbackMember(**BACKUP),))
    chained = scopes.foreground(ScopeRequest(fallback=own)).fallback
    assert chained is not None
    assert chained.chain.config.mode == "round-robin"
    default = scopes.foreground().fallback
    assert default is not None
    assert default.chain.config.mode == "failover"


@given(shared=st.booleans(), count=st.integers(2, 4))
def test_scopes_share_the_applications_chains_and_only_those(
    tmp_path: Path, shared: bool, count: int
) -> None:
    """Scopes of a factory given the application's chains share one chain per configuration
    (its breakers and round-robin position); without them each scope's chain is its own."""
    chains = FallbackChains() if shared else None
    scopes = make_scope_factory(
        ScriptedProvider([], name="openai"),
        sink=RecordingSink(),
        workspace=tmp_path,
        chains=chains,
        provider="openai",
        fallback={"mode": "failover", "members": [BACKUP]},
    )
    built = [scopes.foreground().fallback for _ in range(count)]
    chains_seen = {id(view.chain) for view in built if view is not None}
    assert None not in built
    assert len(chains_seen) == (1 if shared else count)
    if chains is not None:
        assert built[0] is not None
        assert chains.chain(built[0].chain.config) is built[0].chain


@given(settings_mode=st.sampled_from(["off", "failover"]))
def test_a_chain_whose_mode_is_off_gives_the_scope_no_fallback(
    tmp_path: Path, settings_mode: str
) -> None:
    """A request's chain with mode "off" leaves its scope without fallback, whatever the
    settings say."""
    scopes = make_scope_factory(
        ScriptedProvider([], name="openai"),
        sink=RecordingSink(),
        workspace=tmp_path,
        provider="openai",
        fallback={"mode": settings_mode, "members": [BACKUP] if settings_mode != "off" else []},
    )
    off = FallbackSettings(mode="off")
    assert scopes.foreground(ScopeRequest(fallback=off)).fallback is None


@given(compression=st.floats(0.1, 0.95))
def test_a_child_of_a_described_parent_is_built_as_a_child_of_a_live_one(
    tmp_path: Path, compression: float
) -> None:
    """`subagent_of` with a parent's runtime id and ephemerals gives the child `subagent` gives
    under that parent: the same parent id and ephemerals, its own runtime id, no approver."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground(
        ScopeRequest.create(ephemeral_overrides={"compression-threshold": compression})
    )
    request = ScopeRequest(subagent_name="helper")
    live = scopes.subagent(request, parent)
    described = scopes.subagent_of(
        request, parent_runtime_id=parent.runtime_id, ephemerals=parent.ephemerals
    )
    for child in (live, described):
        assert child.state.parent_runtime_id == parent.runtime_id
        assert child.ephemerals == parent.ephemerals
        assert child.get_ephemeral_setting("compression-threshold") == compression
        assert child.runtime_id != parent.runtime_id
        assert child.tools.approver is None
        assert child.fallback is None
    assert live.runtime_id != described.runtime_id


endpoint_fields = st.fixed_dictionaries(
    {
        "base_url": st.sampled_from(["http://a.test/v1", "http://b.test/v1"]),
        "default_model": st.text(alphabet="abcdefgh-", min_size=1, max_size=8),
        "auth_required": st.booleans(),
    }
)


@given(first=endpoint_fields, second=endpoint_fields, picks=st.lists(st.booleans(), max_size=6))
def test_the_default_scope_is_what_a_request_naming_the_settings_gets(
    tmp_path: Path, first: dict[str, Any], second: dict[str, Any], picks: list[bool]
) -> None:
    """`foreground()` works the settings' endpoint out once per factory: interleaved across two
    factories, every default scope has its own factory's endpoint, exactly what a request that
    names it explicitly gets, and a fresh runtime id."""
    factories = [_factory(tmp_path, **first), _factory(tmp_path, **second)]
    seen: set[str] = set()
    for pick, fields in [(pick, (first, second)[pick]) for pick in [False, True, *picks]]:
        scopes = factories[pick]
        default = scopes.foreground()
        named = scopes.foreground(
            ScopeRequest(
                provider="openai",
                model=fields["default_model"],
                base_url=fields["base_url"],
                auth_required=fields["auth_required"],
            )
        )
        assert (default.state.model, default.state.base_url) == (
            fields["default_model"],
            fields["base_url"],
        )
        assert default.auth == named.auth
        assert default.state.auth_type == named.state.auth_type
        assert default.runtime_id not in seen
        seen.add(default.runtime_id)


empty_mappings: st.SearchStrategy[Any] = st.sampled_from([None, {}, FrozenDict()])


@given(params=empty_mappings, overrides=empty_mappings, headers=empty_mappings)
def test_a_request_given_empty_mappings_is_the_request_given_none(
    params: Any, overrides: Any, headers: Any
) -> None:
    """None, an empty dict and an empty frozen mapping all leave a mapping field at its empty
    frozen default."""
    request = ScopeRequest.create(
        provider="openai", model_params=params, ephemeral_overrides=overrides, mcp_headers=headers
    )
    assert request == ScopeRequest(provider="openai")
    for value in (request.model_params, request.ephemeral_overrides, request.mcp_headers):
        assert isinstance(value, FrozenDict)
        assert not value
