"""docs/contracts.md stays true: its JSON examples decode, its tables list the contract's values."""

from __future__ import annotations

import re
import typing
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from ioc.core.citypack import load_pack
from ioc.core.contracts import (
    REASONS,
    SCHEMAS,
    FeedbackEvent,
    decode_event,
    encode_event,
    schema_of,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```json\n(.*?)\n```", TEXT, flags=re.DOTALL)
NOW = datetime.fromisoformat("2025-03-10T09:30:00+07:00")


def test_every_feed_has_an_example() -> None:
    schemas = {msgspec.json.decode(block)["schema"] for block in EXAMPLES}
    assert schemas == set(SCHEMAS)


@pytest.mark.parametrize("block", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_examples_decode_against_the_real_pack(block: str) -> None:
    raw = block.strip().encode()
    schema = msgspec.json.decode(raw)["schema"]
    ev = decode_event(raw, wards=load_pack("halong"), now=NOW, expected_schema=schema)
    assert schema_of(ev) == schema
    if isinstance(ev, FeedbackEvent) and b'"ward_code"' not in raw:
        assert ev.ward_code == "06658"  # derived from the location, inside Cao Xanh
    else:
        # Examples are written the way encode_event writes them.
        assert encode_event(ev) == raw


def test_every_enum_value_is_documented() -> None:
    for cls in SCHEMAS.values():
        for field in msgspec.structs.fields(cls):
            if typing.get_origin(field.type) is typing.Literal:
                for value in typing.get_args(field.type):
                    assert f"`{value}`" in TEXT, (cls.__name__, field.name, value)


def test_every_field_and_reason_is_documented() -> None:
    for cls in SCHEMAS.values():
        for field in msgspec.structs.fields(cls):
            assert f"`{field.encode_name}`" in TEXT, (cls.__name__, field.name)
    for reason in REASONS:
        assert f"| `{reason}` |" in TEXT, reason
