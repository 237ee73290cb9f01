"""Which images a loader reads: a class-balanced seeded subset, and per-rank shards."""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import mindspore.dataset as ds


def balanced_subset(labels: np.ndarray, size: Optional[int], seed: int) -> np.ndarray:
    """Sorted indices of at most ``size`` items whose per-class counts differ by at most one
    (a class with fewer items gives all it has). Same ``labels, size, seed`` -> same subset."""
    labels = np.asarray(labels)
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    # Shuffle each class, then deal round-robin: the k-th pick of every class comes before
    # any (k+1)-th pick, so the first `size` picks are balanced.
    rank = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rank[rng.permutation(members)] = np.arange(len(members))
    order = np.lexsort((labels, rank))
    return np.sort(order[:size])


def shard_size(total: int, num_shards: int, shard_id: int, *, equal: bool) -> int:
    """Items in one shard: ``equal`` (training) gives every rank ``total // num_shards``;
    otherwise shards take every ``num_shards``-th item and together cover all ``total``."""
    if equal:
        return total // num_shards
    return len(range(shard_id, total, num_shards))


class ShardSampler(ds.Sampler):
    """Indices ``0..total-1`` for one rank.

    shuffle: each epoch uses one permutation drawn from (seed, epoch), identical on every
    rank; otherwise file order. equal (training): rank r takes the r-th block of
    ``total // num_shards`` items, so ranks are disjoint and equally long (at most
    num_shards - 1 items sit out, with shuffle a different few each epoch). Not equal
    (evaluation): rank r takes items r, r + n, ..., so the shards are disjoint and together
    cover every item exactly once.
    """

    def __init__(self, total: int, num_shards: int = 1, shard_id: int = 0, *, shuffle: bool, equal: bool,
                 seed: int = 0):
        self.total, self.num_shards, self.shard_id = total, num_shards, shard_id
        self.shuffle, self.equal, self.seed, self.epoch = shuffle, equal, seed, 0
        super().__init__(num_samples=shard_size(total, num_shards, shard_id, equal=equal))

    def __len__(self) -> int:
        return self.num_samples

    def __deepcopy__(self, memo) -> "ShardSampler":
        # MindSpore deep-copies the pipeline for every new iterator; sharing the sampler keeps
        # the epoch counter, so a trainer that makes one iterator per epoch still reshuffles.
        return self

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose permutation the next pass uses (e.g. when resuming)."""
        self.epoch = int(epoch)

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's indices in ``epoch`` (no side effects)."""
        order = (np.random.default_rng([self.seed, epoch]).permutation(self.total) if self.shuffle
                 else np.arange(self.total))
        if not self.equal:
            return order[self.shard_id::self.num_shards]
        per = self.num_samples
        return order[self.shard_id * per:(self.shard_id + 1) * per]

    def __iter__(self) -> Iterator[int]:
        chosen = self.indices(self.epoch)
        self.epoch += 1
        return iter(chosen.tolist())


__all__ = ["ShardSampler", "balanced_subset", "shard_size"]
