# Type stubs for soma.train.
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .. import Tensor, dtype
from ..data import DataLoader
from ..nn import Module
from ..optim import Optimizer

class TrainState:
    model: Module
    optimizer: Optimizer
    epoch: int
    epochs: int
    initial_epoch: int
    batches_per_epoch: int
    samples_per_epoch: int
    has_validation: bool
    stop_training: bool
    samples_seen: int
    running_loss: float
    running_accuracy: float
    logs: Dict[str, float]

class Callback:
    def __init__(self) -> None: ...
    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState, epoch: int) -> None: ...
    def on_batch_end(self, state: TrainState, batch: int, loss: float) -> None: ...
    def on_epoch_end(self, state: TrainState, epoch: int, logs: Dict[str, float]) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

class History(Callback):
    epochs: List[int]
    history: Dict[str, List[float]]
    def __getitem__(self, key: str) -> List[float]: ...
    def __contains__(self, key: str) -> bool: ...
    def __len__(self) -> int: ...
    def keys(self) -> List[str]: ...
    def to_csv(self) -> str: ...
    def to_json(self) -> str: ...

class EarlyStopping(Callback):
    best: float
    best_epoch: int
    stopped_epoch: int
    wait: int
    def __init__(self, monitor: str = ..., min_delta: float = ..., patience: int = ..., mode: str = ..., restore_best_weights: bool = ..., baseline: Optional[float] = ..., start_from_epoch: int = ...) -> None: ...
    def state_dict(self) -> Dict[str, Tensor]: ...
    def load_state_dict(self, state_dict: Dict[str, Tensor]) -> None: ...
class ModelCheckpoint(Callback):
    best: float
    saves: int
    last_path: str
    def __init__(self, filepath: str, monitor: str = ..., save_best_only: bool = ..., mode: str = ..., full_checkpoint: bool = ...) -> None: ...
class CSVLogger(Callback):
    def __init__(self, filename: str, append: bool = ...) -> None: ...
class ProgressBar(Callback):
    def __init__(self, enabled: bool = ..., redraw: Optional[bool] = ..., width: int = ...) -> None: ...

class LambdaCallback(Callback):
    def __init__(self, on_train_begin: Optional[Callable[[TrainState], None]] = ..., on_epoch_begin: Optional[Callable[[int], Any]] = ..., on_batch_end: Optional[Callable[[int, float], Any]] = ..., on_epoch_end: Optional[Callable[[int, Dict[str, float]], Any]] = ..., on_train_end: Optional[Callable[[TrainState], None]] = ...) -> None: ...

class EvalResult:
    loss: float
    accuracy: float
    samples: int

_Loss = Union[Module, Callable[[Tensor, Tensor], Tensor]]

def fit(model: Module, optimizer: Optimizer, loss: _Loss, train: DataLoader, epochs: int = ..., validation: Optional[DataLoader] = ..., callbacks: Optional[Sequence[Union[Callback, Callable[[int, Dict[str, float]], Any]]]] = ..., scheduler: Any = ..., plateau: Any = ..., initial_epoch: int = ..., max_grad_norm: float = ..., verbose: bool = ..., validation_loss: Optional[_Loss] = ..., autocast: Optional[dtype] = ...) -> History: ...
def evaluate(model: Module, loader: DataLoader, loss: _Loss) -> EvalResult: ...
