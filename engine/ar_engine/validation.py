"""Rasa's response validation with each JSON schema's validator built once.

Rasa 3.6 checks every action-server and NLG-endpoint response with `jsonschema.validate(response,
schema)`, imported at call time (`rasa/core/actions/action.py`, `rasa/core/nlg/callback.py`). That
function checks the schema against its meta-schema and builds a new validator on every call: about
30 ms per response, against 1 ms for a validator built once. Rasa has no extension point for it, so
`install()` swaps `jsonschema.validate` for a function that keeps one checked validator per schema
and otherwise behaves the same (same exceptions, same best-matching error).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import jsonschema
from jsonschema import exceptions, validators

_original = jsonschema.validate
# Rasa rebuilds the same few schemas as new dicts on each call: they are told apart by content.
MAX_SCHEMAS = 32
_validators: OrderedDict[tuple[str, Any], Any] = OrderedDict()
_lock = threading.Lock()


def _validator(schema: Any, cls: Any) -> Any:
    key = (json.dumps(schema, sort_keys=True, default=repr), cls)
    with _lock:
        found = _validators.get(key)
        if found is not None:
            _validators.move_to_end(key)
            return found
    chosen = cls if cls is not None else validators.validator_for(schema)
    chosen.check_schema(schema)  # raises SchemaError, as the original does, and is then not cached
    built = chosen(schema)
    with _lock:
        _validators[key] = built
        while len(_validators) > MAX_SCHEMAS:
            _validators.popitem(last=False)
    return built


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """`jsonschema.validate` with the schema checked and its validator built once per schema."""
    if args or kwargs or not isinstance(schema, dict):
        _original(instance, schema, cls, *args, **kwargs)  # options for the validator: nothing to share
        return
    error = exceptions.best_match(_validator(schema, cls).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Make `jsonschema.validate` (as Rasa imports it when validating a response) the cached one."""
    jsonschema.validate = validate  # type: ignore[assignment]  # same signature, cached validators
