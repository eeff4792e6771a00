"""Beyond one process: many runs at once (``batch``) and node execution on a Ray cluster
(``RayExecutor``). Ray itself is imported only when a ``RayExecutor`` starts, so importing
flowgraph never imports it."""

from flowgraph.distributed.batch import BatchRun, read_inputs, run_batch, run_dir_for
from flowgraph.distributed.ray_executor import RayExecutor

__all__ = ["BatchRun", "RayExecutor", "read_inputs", "run_batch", "run_dir_for"]
