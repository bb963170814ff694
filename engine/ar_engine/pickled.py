"""A pipeline component whose fitted model is one pickle stored with the trained Rasa model."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


class PickledModelComponent(GraphComponent):  # Rasa reads these hints at run time: no `Self` (3.11+)
    """`model` is fitted in `train`, stored by `persist` and read back by `load` (None: trained without data)."""

    MODEL_FILE: ClassVar[str]

    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, model: Any = None
    ) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PickledModelComponent:
        """An untrained component: the defaults under config.yml's settings."""
        return cls({**cls.get_default_config(), **config}, model_storage, resource)

    def persist(self) -> Resource:
        """Store the fitted model (or its absence) with the trained model."""
        with self._model_storage.write_to(self._resource) as directory:
            (directory / self.MODEL_FILE).write_bytes(pickle.dumps(self.model))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> PickledModelComponent:
        """The component with its fitted model; a model trained without one loads without it."""
        model = None
        try:
            with model_storage.read_from(resource) as directory:
                model = pickle.loads((directory / cls.MODEL_FILE).read_bytes())  # our own model file
        except (ValueError, FileNotFoundError):
            model = None
        return cls({**cls.get_default_config(), **config}, model_storage, resource, model)
