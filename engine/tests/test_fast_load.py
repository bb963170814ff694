"""The fast model load is installed once and undone cleanly; what it loads is compared with Rasa's own load
on the project's trained model by tests/bot/ops/test_fast_load.py (which runs after training)."""

from __future__ import annotations

from rasa.utils.tensorflow.models import RasaModel

from ar_engine import fast_load


def test_install_replaces_the_load_once_and_uninstall_restores_it() -> None:
    stock = RasaModel.load.__func__  # type: ignore[attr-defined]
    try:
        fast_load.install()
        fast_load.install()
        assert RasaModel.load.__func__ is fast_load.load  # type: ignore[attr-defined]
        assert fast_load._stock_load is stock
    finally:
        fast_load.uninstall()
    assert RasaModel.load.__func__ is stock  # type: ignore[attr-defined]
