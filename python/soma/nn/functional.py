"""soma.nn.functional: torch.nn.functional's functions over soma's ops."""
from .._soma.nn.functional import *  # noqa: F401,F403
