"""The fallback settings through the real command line: a switch shown in `--json` and the
log, and every bad setting one configuration error, never a traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.support.cli import cli_env, openai_text_stream, run_cli
from tests.support.replay_server import ScriptedResponse, replay_server

PRIMARY_KEY = "sk-primary-cli-0123456789"
BACKUP_KEY = "sk-backup-cli-0123456789"


async def test_json_shows_which_member_answered_and_the_log_shows_the_switch(
    tmp_path: Path,
) -> None:
    """The primary answers 503; `--json` names the member that answered instead, the switch is
    logged with from, to and reason, and neither key appears anywhere."""
    with replay_server() as primary, replay_server() as secondary:
        primary.respond_with(lambda _: ScriptedResponse.json_body({"error": {}}, 503))
        secondary.respond_with(lambda _: ScriptedResponse.sse(openai_text_stream("backup")))
        members = [
            {
                "provider": "openai",
                "model": "backup-model",
                "base_url": f"{secondary.url}/v1",
                "api_key_env": "BACKUP_KEY",
            }
        ]
        env = cli_env(
            tmp_path / "data",
            CHATSCOPE_PROVIDER="openai",
            CHATSCOPE_MODEL="primary-model",
            CHATSCOPE_PROVIDERS__OPENAI__BASE_URL=f"{primary.url}/v1",
            CHATSCOPE_RETRY__MAX_ATTEMPTS="1",
            CHATSCOPE_FALLBACK__MODE="failover",
            CHATSCOPE_FALLBACK__MEMBERS=json.dumps(members),
            CHATSCOPE_HISTORY_BACKEND="memory",
            CHATSCOPE_LOG_FORMAT="json",
            OPENAI_API_KEY=PRIMARY_KEY,
            BACKUP_KEY=BACKUP_KEY,
        )
        result = await run_cli("chat", "hi", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == "backup"
    assert document["answered_by"] == {"provider": "openai", "model": "backup-model", "member": 1}
    [switch] = [
        json.loads(line) for line in result.stderr.splitlines() if "provider_switch" in line
    ]
    assert (switch["from"], switch["to"], switch["reason"]) == (
        "openai:primary-model",
        "openai:backup-model",
        "overloaded",
    )
    for key in (PRIMARY_KEY, BACKUP_KEY):
        assert key not in result.stdout
        assert key not in result.stderr


BAD_SETTINGS = {
    "unknown mode": ({"CHATSCOPE_FALLBACK__MODE": "sideways"}, "CHATSCOPE_FALLBACK__MODE"),
    "empty members": (
        {"CHATSCOPE_FALLBACK__MODE": "failover", "CHATSCOPE_FALLBACK__MEMBERS": "[]"},
        "at least one member",
    ),
    "unknown provider": (
        {
            "CHATSCOPE_FALLBACK__MODE": "round-robin",
            "CHATSCOPE_FALLBACK__MEMBERS": '[{"provider": "nope", "model": "m"}]',
        },
        "fallback.members.0.provider",
    ),
    "members not JSON": (
        {"CHATSCOPE_FALLBACK__MODE": "failover", "CHATSCOPE_FALLBACK__MEMBERS": "openai:gpt"},
        "CHATSCOPE_FALLBACK__MEMBERS",
    ),
}


async def test_each_bad_fallback_setting_is_one_configuration_error(tmp_path: Path) -> None:
    """Unknown mode, no members, a member of an unknown provider, members that are not JSON:
    each exits 2 with one line naming the problem, and no traceback."""
    results = await asyncio.gather(
        *(
            run_cli("chat", "hi", cwd=tmp_path, env=cli_env(tmp_path / "data", **variables))
            for variables, _ in BAD_SETTINGS.values()
        )
    )
    for (case, (_, expected)), result in zip(BAD_SETTINGS.items(), results, strict=True):
        assert result.returncode == 2, case
        [line] = result.stderr.splitlines()
        assert line.startswith("chatscope: error: invalid configuration: "), case
        assert expected in line, case
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
