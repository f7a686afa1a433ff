"""`ChatSession`: one conversation in one runtime scope (the seeds' GeminiChat, provider-neutral).

A user prompt starts a turn: the model is called, the tools it asks for are run and their
results sent back, up to the turn limit. Only a completed turn reaches history, in one
`append_turn`: a turn that fails or is cancelled leaves history exactly as it was.

Before a turn's first request the session's `Compressor`, if it has one, may swap a long
history for a compressed one; every request's history passes `repair_tool_pairs`, so a tool call
left without a result never reaches a provider unanswered.

A prompt sent with an `output_type` asks every call of its turn for that schema
(`ModelInvocation.output_schema`); the final answer is validated into `CompletedTurn.output`. An
answer that is not valid JSON of the schema is sent back to the model with what was wrong, as a
user message of the same turn, `output_retries` times; then the turn fails with
`OutputValidationError` and, like any failed turn, stores nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from chatscope.errors import OutputValidationError
from chatscope.services.chat.assembly import ResponseAssembler
from chatscope.services.chat.output import InvalidAnswerError, OutputSpec, output_spec
from chatscope.services.chat.ports import Compressor
from chatscope.services.chat.retry import RetryNotice, RetryPolicy, open_stream
from chatscope.services.chat.tool_pairs import repair_tool_pairs
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    FinishEvent,
    FinishReason,
    ToolResultEvent,
    TurnDone,
)
from chatscope.services.messages import Message, Role, ToolCallBlock, ToolResultBlock, Usage
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.telemetry import RuntimeTelemetry

__all__ = ["ChatSession"]

Sleep = Callable[[float], Awaitable[None]]


class ChatSession:
    """Sends prompts within one runtime scope. It holds the context, never a container."""

    __slots__ = (
        "_auth",
        "_compressor",
        "_context",
        "_lock",
        "_max_turns",
        "_output_retries",
        "_retry",
        "_rng",
        "_sleep",
    )

    def __init__(
        self,
        context: AgentRuntimeContext,
        *,
        auth_resolver: AuthResolver,
        retry_policy: RetryPolicy,
        max_turns: int = 10,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        compressor: Compressor | None = None,
        output_retries: int = 1,
    ) -> None:
        if output_retries < 0:
            raise ValueError("output_retries must be 0 or more")
        self._context = context
        self._auth = auth_resolver
        self._retry = retry_policy
        self._max_turns = max_turns
        self._rng = rng
        self._sleep = sleep
        self._compressor = compressor
        self._output_retries = output_retries
        self._lock = asyncio.Lock()

    @property
    def context(self) -> AgentRuntimeContext:
        """The runtime scope this session runs in."""
        return self._context

    async def send(self, text: str, *, output_type: object = None) -> CompletedTurn:
        """Answer one prompt and return the completed turn.

        With `output_type` (a type pydantic's `TypeAdapter` handles, or a JSON-schema dict) the
        answer must be JSON of that schema, and `turn.output` is it, validated.
        """
        expected = _expected(output_type)
        completed: CompletedTurn | None = None
        # Read the turn to its end rather than return at `TurnDone`: a generator left
        # suspended is closed by the event loop's finalizer, which costs a task per turn.
        async for event in self._turn(text, expected, deliver_events=False):
            if isinstance(event, TurnDone):
                completed = event.turn
        if completed is None:  # pragma: no cover - a turn always ends with TurnDone
            raise AssertionError("a turn always ends with TurnDone")
        return completed

    def stream(self, text: str, *, output_type: object = None) -> AsyncGenerator[ChatEvent, None]:
        """Answer one prompt, yielding text, thinking, tool and usage events, then `TurnDone`.

        `output_type` is as for `send`; the validated answer is `TurnDone.turn.output`.
        """
        return self._turn(text, _expected(output_type), deliver_events=True)

    async def _turn(
        self, text: str, expected: OutputSpec | None, *, deliver_events: bool
    ) -> AsyncGenerator[ChatEvent, None]:
        """The turn; without `deliver_events` only `TurnDone` is yielded (what `send` needs),
        so a turn does not pass each streamed token through a generator nobody reads."""
        async with self._lock:
            await self._compress_if_due()
            turn = _Turn(Message.user(text), expected, self._output_retries)
            while turn.steps < self._max_turns:
                assembler = ResponseAssembler(self._context.state.provider)
                invocation = await self._invocation(turn.messages, expected)
                with _CallTelemetry(self._context.telemetry, invocation, assembler) as call:
                    opened = await open_stream(
                        self._context.provider.get_active_provider(),
                        invocation,
                        self._retry,
                        rng=self._rng,
                        sleep=self._sleep,
                        on_retry=call.retrying,
                    )
                    try:
                        # The first event, then the rest straight from the provider: no layer
                        # in between, and events are assembled once the stream has ended,
                        # since this loop runs once per streamed token.
                        if opened.first is not None:
                            first_at = time.perf_counter()
                            received = [opened.first]
                            if deliver_events and not isinstance(opened.first, FinishEvent):
                                yield opened.first
                            async for event in opened.rest:
                                received.append(event)
                                if deliver_events and not isinstance(event, FinishEvent):
                                    yield event
                            assembler.add_all(received, first_at)
                    finally:
                        await opened.aclose()
                reply = turn.add_reply(assembler)
                if turn.is_over(reply):
                    break
                # No calls: the answer was sent back for a typed output, to be asked again.
                results = await self._run_tools(reply.tool_calls) if reply.tool_calls else ()
                if deliver_events:
                    for result in results:
                        yield ToolResultEvent(result)
                turn.add_tool_results(results)
            else:
                turn.finish = FinishReason.MAX_TURNS
            await self._context.history.append_turn(turn.messages, usage=turn.last_usage)
            yield TurnDone(turn.completed())

    async def _compress_if_due(self) -> None:
        """Compress history before the turn's first request, if its size calls for it."""
        if self._compressor is not None:
            await self._compressor.maybe_compress(self._context)

    async def _invocation(
        self, pending: list[Message], expected: OutputSpec | None
    ) -> ModelInvocation:
        context, state = self._context, self._context.state
        return ModelInvocation(
            runtime_id=state.runtime_id,
            provider=state.provider,
            model=state.model,
            base_url=state.base_url,
            credentials=self._auth.resolve(context.auth),
            history=repair_tool_pairs((*await context.history.messages(), *pending)),
            tools=context.tools.declarations(),
            model_params=state.model_params,
            ephemerals=context.ephemerals,
            system_prompt=context.system_prompt,
            output_schema=expected.schema if expected is not None else None,
        )

    async def _run_tools(self, calls: tuple[ToolCallBlock, ...]) -> tuple[ToolResultBlock, ...]:
        """Run the calls of one reply at once (at most the policy's limit), results in call
        order; cancelling the turn cancels every call still running."""
        if len(calls) == 1:
            return (await self._run_tool(calls[0]),)
        limit = asyncio.Semaphore(self._context.tools.policy.max_concurrent_calls)

        async def bounded(call: ToolCallBlock) -> ToolResultBlock:
            async with limit:
                return await self._run_tool(call)

        async with asyncio.TaskGroup() as group:
            running = [group.create_task(bounded(call)) for call in calls]
        return tuple(task.result() for task in running)

    async def _run_tool(self, call: ToolCallBlock) -> ToolResultBlock:
        started = time.perf_counter()
        result = await self._context.tools.run(call)
        self._context.telemetry.tool_call(
            name=call.name,
            call_id=call.id,
            duration_ms=(time.perf_counter() - started) * 1000,
            error=result.error,
        )
        return result


def _expected(output_type: object) -> OutputSpec | None:
    return None if output_type is None else output_spec(output_type)


class _Turn:
    """The messages and accounting of the turn in progress; nothing here touches history."""

    __slots__ = (
        "answers",
        "expected",
        "finish",
        "last_usage",
        "messages",
        "model_calls",
        "output",
        "rejected",
        "results",
        "retries_left",
        "steps",
        "usage",
    )

    def __init__(
        self, prompt: Message, expected: OutputSpec | None = None, retries: int = 0
    ) -> None:
        self.messages: list[Message] = [prompt]
        self.usage = Usage()
        self.last_usage: Usage | None = None
        self.finish = FinishReason.OTHER
        self.model_calls = 0
        self.steps = 0  # model calls that count against the turn limit
        self.results: list[ToolResultBlock] = []
        self.expected = expected
        self.retries_left = retries
        self.answers = 0
        self.output: Any = None
        self.rejected: set[int] = set()  # indexes of answers that failed validation

    def add_reply(self, assembler: ResponseAssembler) -> Message:
        reply = assembler.message()
        if reply.blocks:
            self.messages.append(reply)
        self.model_calls += 1
        self.steps += 1
        self.usage = self.usage + assembler.usage
        self.last_usage = assembler.usage
        self.finish = assembler.finish_reason
        return reply

    def is_over(self, reply: Message) -> bool:
        """Whether `reply` ends the turn: it makes no tool calls and is a usable answer.

        Without an output type every answer is. With one, an answer that validates sets
        `output`; one that does not goes back to the model as a user message with what was
        wrong, while retries are left (asking again is no step of the tool loop), and after
        that the turn fails with `OutputValidationError`.
        """
        if reply.tool_calls:
            return False
        if self.expected is None:
            return True
        self.answers += 1
        try:
            self.output = self.expected.parse(reply.text)
        except InvalidAnswerError as problem:
            if self.retries_left <= 0:
                raise OutputValidationError(
                    self.expected.schema.name, reply.text, str(problem), attempts=self.answers
                ) from None
            self.retries_left -= 1
            self.steps -= 1
            if self.messages[-1] is reply:
                self.rejected.add(len(self.messages) - 1)
            self.messages.append(self.expected.feedback(problem))
            return False
        return True

    def add_tool_results(self, results: tuple[ToolResultBlock, ...]) -> None:
        if not results:
            return
        self.messages.append(Message(Role.TOOL, results))
        self.results.extend(results)

    def completed(self) -> CompletedTurn:
        replies = [
            (index, message)
            for index, message in enumerate(self.messages)
            if message.role is Role.ASSISTANT
        ]
        return CompletedTurn(
            text="".join(m.text for index, m in replies if index not in self.rejected),
            tool_calls=tuple(call for _, message in replies for call in message.tool_calls),
            tool_results=tuple(self.results),
            usage=self.usage,
            finish_reason=self.finish,
            model_calls=self.model_calls,
            output=self.output,
        )


class _CallTelemetry:
    """Reports one model call (all its attempts) through the scope's telemetry.

    Entered around the streaming of one call: `api_request` on entry, then `api_response` with
    usage, finish reason, duration and time to first token, or `api_error` if it failed. A
    call abandoned by its caller (cancelled, stream closed) is neither.
    """

    __slots__ = ("_assembler", "_secret", "_started", "_telemetry", "attempt")

    def __init__(
        self, telemetry: RuntimeTelemetry, invocation: ModelInvocation, assembler: ResponseAssembler
    ) -> None:
        self._telemetry = telemetry
        self._assembler = assembler
        self._secret = invocation.credentials.secret()
        self.attempt = 1
        self._started = time.perf_counter()
        telemetry.api_request(
            message_count=len(invocation.history), tool_count=len(invocation.tools)
        )

    def __enter__(self) -> _CallTelemetry:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        if error is None:
            self._completed(elapsed_ms)
        elif isinstance(error, Exception):
            self._telemetry.api_error(
                duration_ms=elapsed_ms, error=error, attempt=self.attempt, secret=self._secret
            )

    def retrying(self, notice: RetryNotice) -> None:
        self.attempt = notice.attempt + 1
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        self._telemetry.api_error(
            duration_ms=elapsed_ms, error=notice.error, attempt=notice.attempt, secret=self._secret
        )

    def _completed(self, elapsed_ms: float) -> None:
        first = self._assembler.first_event_at
        self._telemetry.api_response(
            duration_ms=elapsed_ms,
            usage=self._assembler.usage,
            finish_reason=str(self._assembler.finish_reason),
            attempt=self.attempt,
            time_to_first_token_ms=(first - self._started) * 1000 if first else None,
        )
