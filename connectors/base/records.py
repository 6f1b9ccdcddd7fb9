"""Source records in the wire format, and what happens to one that does not fit.

A connector publishes every record it reads. One that its schema or model
refuses travels as JSON text instead, so that the route stage dead-letters
it with the reason: nothing is dropped in a connector.
"""

from __future__ import annotations

import json
from typing import Any

from gridhub.schemas import MODELS, encode_dict
from pydantic import ValidationError


def encode_row(schema: str, row: dict[str, Any]) -> bytes:
    """The row in its Avro schema; a row that does not fit it travels as JSON text."""
    try:
        return encode_dict(schema, row)
    except Exception:
        return json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")


def encode_item(schema: str, item: dict[str, Any]) -> bytes:
    """The item in its Avro schema once its model accepts it; else as JSON text."""
    try:
        model = MODELS[schema].model_validate(item)
        return encode_dict(schema, model.model_dump())
    except (ValidationError, ValueError, TypeError):
        return json.dumps(item, ensure_ascii=False).encode("utf-8")
