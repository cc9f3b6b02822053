"""soma.optim.lr_scheduler: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
ReduceLROnPlateau (torch's names and arguments)."""
from ..._soma.optim.lr_scheduler import *  # noqa: F401,F403
