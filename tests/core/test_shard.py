"""shard() and partition(): each node's part, type kept, arrays aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skyward.runtime import partition, shard


def parts(data, n, **kw):
    return [shard(data, node=i, total_nodes=n, **kw) for i in range(n)]


def test_parts_are_contiguous_balanced_and_cover_everything():
    assert parts(list(range(10)), 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (list(range(9)), list),
        (tuple(range(9)), tuple),
        (range(9), range),
        ("abcdefghi", str),
    ],
)
def test_type_is_kept(data, kind):
    for part in parts(data, 2):
        assert type(part) is kind
    assert [len(p) for p in parts(data, 2)] == [5, 4]


def test_numpy_and_torch_keep_their_type_and_alignment():
    x = np.arange(20).reshape(10, 2)
    y = torch.arange(10)
    for node in range(3):
        xs, ys = shard(x, y, node=node, total_nodes=3, shuffle=True, seed=7)
        assert isinstance(xs, np.ndarray) and isinstance(ys, torch.Tensor)
        assert (xs[:, 0] // 2).tolist() == ys.tolist()  # rows stay paired


def test_shuffled_parts_are_disjoint_covering_and_seeded():
    first = parts(list(range(100)), 4, shuffle=True, seed=1)
    again = parts(list(range(100)), 4, shuffle=True, seed=1)
    other = parts(list(range(100)), 4, shuffle=True, seed=2)
    assert first == again
    assert first != other
    assert sorted(i for p in first for i in p) == list(range(100))
    assert first != parts(list(range(100)), 4)  # shuffling changed the order


def test_shuffled_range_becomes_a_list():
    part = shard(range(10), node=0, total_nodes=2, shuffle=True)
    assert isinstance(part, list) and len(part) == 5


def test_drop_last_trims_every_part_to_the_same_size():
    assert [len(p) for p in parts(list(range(10)), 3, drop_last=True)] == [3, 3, 3]


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match=r"got lengths \[3, 4\]"):
        shard([1, 2, 3], [1, 2, 3, 4], node=0, total_nodes=2)


def test_outside_a_task_shard_needs_the_topology():
    with pytest.raises(RuntimeError, match="only available inside a task"):
        shard([1, 2, 3])


def test_partition_rejects_a_part_outside_the_range():
    with pytest.raises(ValueError, match=r"part must be in \[0, 2\), got 2"):
        partition(10, 2, 2)
