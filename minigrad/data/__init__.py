"""Data: the IDX reader, the MNIST / Fashion-MNIST loaders and batching."""
from .idx import read_idx, write_idx
from .datasets import load_fashion_mnist, load_mnist, FASHION_MNIST_CLASSES
from .loader import DataLoader, TensorDataset
from .sampler import DistributedSampler
from . import transforms
