"""soma.data: TensorDataset (tensors or NumPy arrays), Subset, random_split, DataLoader,
transforms, and the IDX / Fashion-MNIST / CSV readers.

    ds = soma.data.TensorDataset(x, y)                    # x, y: tensors or NumPy arrays
    loader = soma.data.DataLoader(ds, batch_size=32, shuffle=True, seed=0)
    for xb, yb in loader:
        ...

Any Python object with __len__ and __getitem__ (returning (x, y)) is a dataset too; it is
called with the GIL, also from the loader's worker threads. With shuffle=True every pass is a
new order, as with torch: one left early (a `break`) counts as a pass, and the order of pass e
depends only on (seed, e).
"""
from .._soma.data import *  # noqa: F401,F403
from . import transforms  # noqa: F401
