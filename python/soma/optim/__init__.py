"""soma.optim: torch.optim's optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta) and
soma.optim.lr_scheduler. Arguments as torch's:

    opt = soma.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    opt = soma.optim.Adam([{"params": model[0].parameters(), "lr": 1e-3},
                           {"params": model[2].parameters()}], lr=1e-2, betas=(0.9, 0.99))
"""
from .._soma.optim import *  # noqa: F401,F403
from . import lr_scheduler  # noqa: F401
