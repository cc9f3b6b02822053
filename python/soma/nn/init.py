"""soma.nn.init: in-place initialisers with torch.nn.init's names and formulas."""
from .._soma.nn.init import *  # noqa: F401,F403
