"""Sample loading in the training process itself (num_workers = 0)."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset


class SingleThreadSamples(Dataset):
    """Builds each sample with one torch thread. Per-sample tensor work is tiny, and on a busy CPU an OpenMP
    team waits for its descheduled threads: on 2 shared cores a CrossViewPairs sample took ~370 ms with 2
    threads and ~5 ms with 1. DataLoader worker processes already run single-threaded."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        previous = torch.get_num_threads()
        if previous == 1:
            return self.dataset[index]
        torch.set_num_threads(1)
        try:
            return self.dataset[index]
        finally:
            torch.set_num_threads(previous)


def loadable(dataset: Dataset, num_workers: int) -> Dataset:
    """The dataset to hand to a DataLoader with `num_workers` workers."""
    return dataset if num_workers > 0 else SingleThreadSamples(dataset)
