"""Data parallelism over the ranks of an MPI job (torch.nn.parallel's names)."""
from .distributed import DistributedDataParallel
