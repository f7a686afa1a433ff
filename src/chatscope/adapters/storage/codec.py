"""A lossless JSON form of messages and usage, as the session database stores them.

A block is an object tagged with its kind (`text`, `thinking`, `tool_call`, `tool_result`)
holding every field whose value differs from the field's default, so signatures, provider
names and item ids survive and a field added to a block later needs no change here. Decoding
refuses anything it does not know rather than drop it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from chatscope.services.frozen import deep_freeze, thaw
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)

__all__ = [
    "MessageCodecError",
    "decode_message",
    "decode_usage",
    "encode_message",
    "encode_usage",
    "message_from_dict",
    "message_to_dict",
]

_BLOCK_TYPES: Mapping[str, type[Block]] = MappingProxyType(
    {
        "text": TextBlock,
        "thinking": ThinkingBlock,
        "tool_call": ToolCallBlock,
        "tool_result": ToolResultBlock,
    }
)
_TAGS: Mapping[type[Block], str] = MappingProxyType({cls: tag for tag, cls in _BLOCK_TYPES.items()})


# Each block kind's fields as (name, default) pairs, read once: `dataclasses.fields` per block
# cost more than the block's encoding.
_FIELD_DEFAULTS: Mapping[type[Block], tuple[tuple[str, Any], ...]] = MappingProxyType(
    {kind: tuple((spec.name, spec.default) for spec in dataclasses.fields(kind)) for kind in _TAGS}
)
_USAGE_FIELDS = tuple(spec.name for spec in dataclasses.fields(Usage))
# One compact encoder (its options only, nothing it encodes stays in it): `json.dumps` with
# options builds an encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_TEXT_BLOCK_OPENING = '{"type":"text","text":'


# What a block field may hold, by its annotation; a field of any other annotation is not checked.
_VALUE_TYPES: Mapping[str, type | tuple[type, ...]] = MappingProxyType(
    {"str": str, "str | None": (str, type(None)), "FrozenDict": Mapping}
)


class MessageCodecError(ValueError):
    """A stored payload is not a message (or usage) this version of chatscope can read."""


def message_to_dict(message: Message) -> dict[str, Any]:
    """The message as plain JSON-compatible data."""
    return {"role": str(message.role), "blocks": [_block_to_dict(b) for b in message.blocks]}


def message_from_dict(data: Mapping[str, Any]) -> Message:
    """The message `message_to_dict` made; raises `MessageCodecError` on anything else."""
    try:
        role = Role(data["role"])
        blocks = tuple(_block_from_dict(block) for block in data["blocks"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageCodecError(f"not a stored message: {exc}") from None
    return Message(role, blocks)


def encode_message(message: Message) -> str:
    """The message as compact JSON text."""
    texts = _plain_texts(message.blocks)
    if texts is None:
        return _dumps(message_to_dict(message))
    # Every prompt and most replies: the same text, written without building dictionaries.
    blocks = ",".join([_TEXT_BLOCK_OPENING + _ENCODER.encode(text) + "}" for text in texts])
    return f'{{"role":"{message.role}","blocks":[{blocks}]}}'


def _plain_texts(blocks: tuple[Block, ...]) -> list[str] | None:
    """The texts of `blocks` if each is a text block without a signature, else None."""
    texts = []
    for block in blocks:
        if type(block) is not TextBlock or block.signature is not None:
            return None
        texts.append(block.text)
    return texts


def decode_message(text: str) -> Message:
    """The message `encode_message` wrote."""
    return message_from_dict(_loads(text))


def encode_usage(usage: Usage) -> str:
    """Usage as compact JSON text."""
    counts = {name: getattr(usage, name) for name in _USAGE_FIELDS}
    if all(type(count) is int for count in counts.values()):
        return "{" + ",".join([f'"{name}":{count}' for name, count in counts.items()]) + "}"
    return _dumps(counts)


def decode_usage(text: str) -> Usage:
    """The usage `encode_usage` wrote."""
    data = _loads(text)
    try:
        return Usage(**data)
    except TypeError as exc:
        raise MessageCodecError(f"not stored usage: {exc}") from None


def _block_to_dict(block: Block) -> dict[str, Any]:
    kind = type(block)
    data: dict[str, Any] = {"type": _TAGS[kind]}
    for name, default in _FIELD_DEFAULTS[kind]:
        value = getattr(block, name)
        if default is dataclasses.MISSING or value != default:
            data[name] = value if type(value) is str else thaw(value)
    return data


def _block_from_dict(data: Any) -> Block:
    if not isinstance(data, Mapping):
        raise MessageCodecError("a stored block is a JSON object")
    fields = dict(data)
    kind = _BLOCK_TYPES.get(fields.pop("type", None))
    if kind is None:
        raise MessageCodecError(f"unknown block type {data.get('type')!r}")
    for spec in dataclasses.fields(kind):
        if spec.name in fields:
            _check_type(kind, spec.name, str(spec.type), fields[spec.name])
    return kind(**{name: deep_freeze(value) for name, value in fields.items()})


def _check_type(kind: type[Block], name: str, annotation: str, value: Any) -> None:
    expected = _VALUE_TYPES.get(annotation, object)
    if not isinstance(value, expected):
        shown = type(value).__name__
        raise MessageCodecError(f"{_TAGS[kind]} block field {name!r} holds a {shown}")


def _dumps(data: Any) -> str:
    return _ENCODER.encode(data)


def _loads(text: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MessageCodecError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageCodecError("a stored payload is a JSON object")
    return data
