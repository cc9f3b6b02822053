"""soma.train: fit, evaluate and the Keras-style callbacks (History, EarlyStopping,
ModelCheckpoint, CSVLogger, ProgressBar; LambdaCallback or subclass Callback for your own)."""
from .._soma.train import *  # noqa: F401,F403
from .._soma.train import Callback, fit as _fit

__all__ = ["fit", "evaluate", "Callback", "LambdaCallback", "History", "EarlyStopping",
           "ModelCheckpoint", "CSVLogger", "ProgressBar", "TrainState", "EvalResult"]


class LambdaCallback(Callback):
    """A callback from functions (Keras's LambdaCallback):
    on_train_begin(state), on_epoch_begin(epoch), on_batch_end(batch, loss),
    on_epoch_end(epoch, logs), on_train_end(state). `state.stop_training = True` in the
    begin/end hooks ends training; the others can return True to do the same."""

    def __init__(self, on_train_begin=None, on_epoch_begin=None, on_batch_end=None,
                 on_epoch_end=None, on_train_end=None):
        super().__init__()
        self._fns = {"train_begin": on_train_begin, "epoch_begin": on_epoch_begin,
                     "batch_end": on_batch_end, "epoch_end": on_epoch_end,
                     "train_end": on_train_end}

    def on_train_begin(self, state):
        if self._fns["train_begin"]:
            self._fns["train_begin"](state)

    def on_epoch_begin(self, state, epoch):
        if self._fns["epoch_begin"] and self._fns["epoch_begin"](epoch) is True:
            state.stop_training = True

    def on_batch_end(self, state, batch, loss):
        if self._fns["batch_end"] and self._fns["batch_end"](batch, loss) is True:
            state.stop_training = True

    def on_epoch_end(self, state, epoch, logs):
        if self._fns["epoch_end"] and self._fns["epoch_end"](epoch, logs) is True:
            state.stop_training = True

    def on_train_end(self, state):
        if self._fns["train_end"]:
            self._fns["train_end"](state)


def fit(model, optimizer, loss, train, epochs=10, validation=None, callbacks=None,
        scheduler=None, plateau=None, initial_epoch=0, max_grad_norm=0.0, verbose=True,
        validation_loss=None, autocast=None):
    """Trains `model` on the batches of `train` for `epochs` epochs and returns the History
    (soma::train::fit: mini-batch loop, validation after every epoch, schedulers, callbacks;
    verbose adds a progress bar). autocast=soma.bfloat16 runs each training step's forward and
    backward under soma.autocast (bfloat16 products, float32 weights). `callbacks` holds soma.train.Callback objects or plain
    functions fn(epoch, logs), called after every epoch (returning True stops training).
    Runs in C++ without the GIL; Ctrl-C stops it after the current batch (KeyboardInterrupt)."""
    cbs = None
    if callbacks is not None:
        cbs = [c if isinstance(c, Callback) or not callable(c) else LambdaCallback(on_epoch_end=c)
               for c in callbacks]
    return _fit(model, optimizer, loss, train, epochs=epochs, validation=validation,
                callbacks=cbs, scheduler=scheduler, plateau=plateau,
                initial_epoch=initial_epoch, max_grad_norm=max_grad_norm, verbose=verbose,
                validation_loss=validation_loss, autocast=autocast)
