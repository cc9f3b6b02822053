"""soma.train: fit, evaluate and the Keras-style callbacks (History, EarlyStopping,
ModelCheckpoint, CSVLogger, ProgressBar; subclass Callback for your own)."""
from .._soma.train import *  # noqa: F401,F403
