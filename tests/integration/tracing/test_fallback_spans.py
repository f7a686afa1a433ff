"""A call that moves along its scope's fallback chain is one span: its retries and the switch
are events of it, and the model that answered is its response model (live 127.0.0.1 servers)."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.trace import StatusCode

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from tests.support.cli import openai_text_stream
from tests.support.replay_server import RecordedRequest, ScriptedResponse, replay_server
from tests.support.tracing import attribute, everything_recorded, record_spans

PRIMARY_KEY = "primary-key-0123456789"
BACKUP_KEY = "backup-key-0123456789"


def _unavailable(_: RecordedRequest) -> ScriptedResponse:
    return ScriptedResponse.json_body({"error": {"message": "overloaded"}}, 503)


async def test_a_switch_is_an_event_of_the_call_and_the_answer_names_the_member(
    tmp_path: Path,
) -> None:
    """Primary fails (after its own retry), the backup answers: one `chat primary-model` span
    with a `chatscope.retry` and a `provider_switch` event, `gen_ai.response.model` the
    backup's, no cost (the member's prices are not the span's to know), no key anywhere."""
    with replay_server() as primary, replay_server() as backup:
        primary.respond_with(_unavailable)
        backup.respond_with(lambda _: ScriptedResponse.sse(openai_text_stream("from the backup")))
        member = {
            "provider": "openai",
            "model": "backup",
            "base_url": backup.url + "/v1",
            "api_key_env": "BACKUP_KEY",
        }
        settings = ExplicitSettings(
            workspace=tmp_path,
            provider="openai",
            model="primary-model",
            providers={"openai": {"base_url": primary.url + "/v1"}},
            retry={"max_attempts": 2, "initial_delay": 0.001, "max_delay": 0.002},
            fallback={"mode": "failover", "members": [member]},
        )
        environ = {"OPENAI_API_KEY": PRIMARY_KEY, "BACKUP_KEY": BACKUP_KEY}
        app = ApplicationContainer(settings=settings, environ=environ)
        recorder = record_spans(app)
        await app.init_resources()  # type: ignore[misc]
        try:
            chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
            turn = await chat.send("hi")
        finally:
            await app.shutdown_resources()  # type: ignore[misc]
    assert turn.text == "from the backup"
    call = recorder.one("chat ")
    assert call.name == "chat primary-model"
    assert [event.name for event in call.events] == ["chatscope.retry", "provider_switch"]
    switch = dict(call.events[1].attributes or {})
    assert switch["chatscope.switch.from"] == "openai:primary-model"
    assert switch["chatscope.switch.to"] == "openai:backup"
    assert switch["chatscope.switch.reason"] == "overloaded"
    assert attribute(call, "gen_ai.request.model") == "primary-model"
    assert attribute(call, "gen_ai.response.model") == "backup"
    assert attribute(call, "gen_ai.usage.cost") is None
    assert call.status.status_code is StatusCode.UNSET
    recorded = everything_recorded(recorder.spans())
    assert PRIMARY_KEY not in recorded
    assert BACKUP_KEY not in recorded
