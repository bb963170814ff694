"""Event classes found by name once, not by walking every subclass of `Event` for each event.

Rasa 3.6 turns every stored event back into an object with `Event.from_parameters`, which calls
`Event.resolve_by_type`: it lists all (non-abstract) subclasses of `Event` recursively, checking each for
being abstract, and compares their names, for every single event. A turn reads up to the tracker
window's events (80 by default), and the app's action responses carry more: under load that was 10 % of the
engine's event loop. `install()` keeps a name → class table, filled on first use from the same
search (so the first match wins, as in Rasa) and searched again only for a name not seen yet;
"topic", defaults and unknown names behave as before.
"""

from __future__ import annotations

from typing import Any

_found: dict[str, Any] = {}
_original: Any = None


def resolve_by_type(type_name: str, default: Any = None) -> Any:
    """`Event.resolve_by_type` with the classes found once by name."""
    cls = _found.get(type_name)
    if cls is not None:
        return cls
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    for candidate in all_subclasses(Event):
        _found.setdefault(candidate.type_name, candidate)
    cls = _found.get(type_name)
    if cls is not None:
        return cls
    return _original(type_name, default)  # "topic", a default, or Rasa's ValueError


def install() -> None:
    """Make `Event.resolve_by_type` (and so `Event.from_parameters`) use the table."""
    global _original
    from rasa.shared.core.events import Event

    if _original is None:
        _original = Event.resolve_by_type
        Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign,assignment]
