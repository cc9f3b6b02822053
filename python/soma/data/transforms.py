"""soma.data.transforms: batch transforms with torchvision's names (Normalize, RandomCrop,
RandomHorizontalFlip, Reshape, Lambda, Compose); a Python callable works as one."""
from ..._soma.data.transforms import *  # noqa: F401,F403
