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

Each turn is traced through the scope's tracer (`telemetry.tracer`): a turn trace, and under
it one trace per model call (`CallTelemetry`) and per tool call. None is left ambient across a
`yield`: the turn only around compression, a call only while its stream is opened, a tool call
while it runs (so a subagent the `task` tool starts is traced under that call).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chatscope.errors import OutputValidationError
from chatscope.services.chat.assembly import ResponseAssembler
from chatscope.services.chat.call_telemetry import CallTelemetry
from chatscope.services.chat.fallback import ProviderSwitch, open_routed
from chatscope.services.chat.output import InvalidAnswerError, OutputSpec, output_spec
from chatscope.services.chat.ports import Compressor
from chatscope.services.chat.retry import OpenedStream, RetryPolicy, open_stream
from chatscope.services.chat.tool_pairs import ToolPairRepairer
from chatscope.services.events import (
    AnsweredBy,
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
from chatscope.services.runtime.observability.tracing import TurnTrace

__all__ = ["ChatRules", "ChatSession", "open_chat_session"]

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
        "_pairs",
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
        # Repairs each request's history, checking only what is new since the last one.
        self._pairs = ToolPairRepairer()

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
            prompt = Message.user(text)
            with self._context.telemetry.tracer.turn(prompt) as trace:
                with trace.active():
                    await self._compress_if_due()
                turn = _Turn(prompt, expected, self._output_retries)
                while turn.steps < self._max_turns:
                    assembler = ResponseAssembler(self._context.state.provider)
                    invocation = await self._invocation(turn.messages, expected)
                    telemetry = self._context.telemetry
                    with CallTelemetry(telemetry, invocation, assembler, trace) as call:
                        with call.trace.active():
                            opened = await self._open_stream(turn, invocation, assembler, call)
                        try:
                            # The first event, then the rest straight from the provider: no
                            # layer in between, and events are assembled once the stream has
                            # ended, since this loop runs once per streamed token.
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
                    results = (
                        await self._run_tools(reply.tool_calls, trace) if reply.tool_calls else ()
                    )
                    if deliver_events:
                        for result in results:
                            yield ToolResultEvent(result)
                    turn.add_tool_results(results)
                else:
                    turn.finish = FinishReason.MAX_TURNS
                await self._context.history.append_turn(turn.messages, usage=turn.last_usage)
                completed = turn.completed()
                trace.completed(completed)
            yield TurnDone(completed)

    async def _open_stream(
        self,
        turn: _Turn,
        invocation: ModelInvocation,
        assembler: ResponseAssembler,
        call: CallTelemetry,
    ) -> OpenedStream:
        """Open the call's stream at the scope's own endpoint, or through its fallback chain
        (`chat.fallback`); `turn` notes which endpoint answered."""
        fallback = self._context.fallback
        if fallback is None:
            if turn.answered_by is None:
                state = self._context.state
                turn.answered_by = AnsweredBy(state.provider, state.model)
            return await open_stream(
                self._context.provider.get_active_provider(),
                invocation,
                self._retry,
                rng=self._rng,
                sleep=self._sleep,
                on_retry=call.retrying,
            )
        routed = await open_routed(
            fallback,
            invocation,
            self._retry,
            resolve=self._auth.resolve,
            sticky=turn.answered_by.member if turn.answered_by is not None else None,
            rng=self._rng,
            sleep=self._sleep,
            on_retry=call.retrying,
            on_switch=self._provider_switched,
        )
        turn.answered_by = routed.answered_by
        call.answered(routed.answered_by)
        assembler.set_provider(routed.answered_by.provider)
        return routed.opened

    def _provider_switched(self, switch: ProviderSwitch) -> None:
        """A call of this scope moved to another member of its fallback chain: the one place
        a switch is reported (a `provider_switch` event, and the same event on the call's
        span, which is ambient while the call's stream is opened)."""
        self._context.telemetry.tracer.provider_switched(
            from_=switch.from_label, to=switch.to_label, reason=switch.reason, status=switch.status
        )
        self._context.telemetry.provider_switch(
            from_=switch.from_label,
            to=switch.to_label,
            reason=switch.reason,
            status=switch.status,
            from_member=switch.from_member,
            to_member=switch.to_member,
        )

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
            history=self._pairs.repair((*await context.history.messages(), *pending)),
            tools=context.tools.declarations(),
            model_params=state.model_params,
            ephemerals=context.ephemerals,
            system_prompt=context.system_prompt,
            output_schema=expected.schema if expected is not None else None,
        )

    async def _run_tools(
        self, calls: tuple[ToolCallBlock, ...], trace: TurnTrace
    ) -> tuple[ToolResultBlock, ...]:
        """Run the calls of one reply at once (at most the policy's limit), results in call
        order, each traced under the turn's `trace`; cancelling the turn cancels every call
        still running."""
        if len(calls) == 1:
            return (await self._run_tool(calls[0], trace),)
        limit = asyncio.Semaphore(self._context.tools.policy.max_concurrent_calls)

        async def bounded(call: ToolCallBlock) -> ToolResultBlock:
            async with limit:
                return await self._run_tool(call, trace)

        async with asyncio.TaskGroup() as group:
            running = [group.create_task(bounded(call)) for call in calls]
        return tuple(task.result() for task in running)

    async def _run_tool(self, call: ToolCallBlock, trace: TurnTrace) -> ToolResultBlock:
        started = time.perf_counter()
        with trace.tool_call(call) as span:
            result = await self._context.tools.run(call)
            span.completed(result)
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
        "answered_by",
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
        self.answered_by: AnsweredBy | None = None  # the endpoint of the latest model call

    def add_reply(self, assembler: ResponseAssembler) -> Message:
        """Keep the model's answer, even an empty one (say, cut at the output token limit):
        the turn is stored as it happened, and user and assistant still alternate."""
        reply = assembler.message()
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
            answered_by=self.answered_by,
        )


@dataclass(frozen=True, slots=True)
class ChatRules:
    """How an application's chats run: one object for all of them, holding nothing of a chat."""

    auth_resolver: AuthResolver
    retry_policy: RetryPolicy
    max_turns: int
    output_retries: int


def open_chat_session(
    context: AgentRuntimeContext,
    *,
    rules: ChatRules,
    compressor: Compressor | None = None,
    max_turns: int | None = None,
) -> ChatSession:
    """A chat session over `context` under the application's `rules`; `max_turns`, when given,
    is this chat's own turn limit (a subagent profile's, say)."""
    return ChatSession(
        context,
        auth_resolver=rules.auth_resolver,
        retry_policy=rules.retry_policy,
        max_turns=rules.max_turns if max_turns is None else max_turns,
        compressor=compressor,
        output_retries=rules.output_retries,
    )
