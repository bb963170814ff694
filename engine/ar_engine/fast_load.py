"""Faster start: DIET's weights are built by one eager forward pass, not by tracing a training step.

Rasa's `RasaModel.load` builds a model's variables by fitting it on one example (`model.fit`): Keras
traces the whole training function (loss, gradients, the optimizer's update) into a graph, runs it
once, and then the trained weights are loaded over what that step wrote. On 2 cores the tracing is
about 3 s of the engine's start, for variables that one call of the model's loss creates just as
well. `load` here computes that loss once, eagerly, on the same example batch (so every layer of the
training path, label embeddings included, is built with the same shapes), then loads the weights and
warms the prediction function up exactly as Rasa does. The optimizer's state in the checkpoint is
not needed to predict and is left unread (`expect_partial`).

`install()` replaces `RasaModel.load`; `compare` (python -m ar_engine.fast_load MODEL) loads a trained
model both ways in one process and checks that they predict the same.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def load(
    cls: Any,
    model_file_name: str,
    model_data_example: Any,
    predict_data_example: Any = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """`RasaModel.load` with the one-example fit replaced by one eager loss computation."""
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
    from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

    if finetune_mode:  # fine-tuning trains on: the optimizer's state is needed, as Rasa builds it
        return _stock_load(
            cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs
        )
    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=config.get(RUN_EAGERLY)
    )
    batch_in, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
    model.batch_loss(batch_in)  # creates every variable of the training path, eagerly
    model.load_weights(model_file_name).expect_partial()
    if predict_data_example:
        model.run_inference(predict_data_example)
    return model


_stock_load: Any = None


def install() -> None:
    """Make Rasa's TensorFlow models load with `load`."""
    global _stock_load
    from rasa.utils.tensorflow.models import RasaModel

    if _stock_load is not None:
        return
    _stock_load = RasaModel.load.__func__  # type: ignore[attr-defined]
    RasaModel.load = classmethod(load)  # type: ignore[assignment,method-assign]


def uninstall() -> None:
    """Undo `install()` (tests)."""
    global _stock_load
    from rasa.utils.tensorflow.models import RasaModel

    if _stock_load is not None:
        RasaModel.load = classmethod(_stock_load)  # type: ignore[assignment,method-assign]
        _stock_load = None


CHECK_TEXTS = (
    "你好，我的订单DD202405001到哪了？",
    "請問退貨要怎麼辦理？",
    "Where is my order DD202405002?",
    "谢谢",
    "在吗 亲 发票开错了能重开吗",
    "my blender broke after two days",
    "转人工",
    "你们这什么破服务，气死我了",
    "保固多久",
    "优惠券怎么用",
)


async def compare(model: str) -> float:
    """Load `model` as Rasa does and with `load`; the largest difference of any intent's confidence.

    Raises AssertionError when the two rank the intents differently for any of CHECK_TEXTS.
    """
    from rasa.core.agent import Agent

    async def rankings(agent: Any) -> list[list[tuple[str, float]]]:
        out = []
        for text in CHECK_TEXTS:
            parsed = await agent.parse_message(text)
            out.append([(i["name"], float(i["confidence"])) for i in parsed["intent_ranking"]])
        return out

    uninstall()
    stock = await rankings(Agent.load(model))
    install()
    fast = await rankings(Agent.load(model))
    worst = 0.0
    for text, a, b in zip(CHECK_TEXTS, stock, fast, strict=True):
        assert [n for n, _ in a] == [n for n, _ in b], f"{text!r}: {a[:3]} != {b[:3]}"
        worst = max([worst, *(abs(x - y) for (_, x), (_, y) in zip(a, b, strict=True))])
    return worst


def main() -> None:
    """python -m ar_engine.fast_load MODEL: print the largest confidence difference (exit 1 if ranked apart)."""
    import asyncio
    import sys

    print(f"max confidence difference: {asyncio.run(compare(sys.argv[1])):.2e}")


if __name__ == "__main__":
    main()
