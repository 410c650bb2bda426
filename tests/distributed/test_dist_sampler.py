"""DistributedSampler and shard: disjoint, covering parts, alike on every node."""

from __future__ import annotations

import pytest

import skyward as sky
from skyward.runtime.sampler import DistributedSampler


def parts(size: int, world: int, epoch: int = 0, **options) -> list[list[int]]:
    samplers = [
        sky.DistributedSampler(range(size), num_replicas=world, rank=r, **options)
        for r in range(world)
    ]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(s) for s in samplers]


@pytest.mark.parametrize("shuffle", [True, False])
def test_parts_are_disjoint_and_cover_an_even_dataset(shuffle):
    got = parts(12, 3, shuffle=shuffle)
    flat = [i for part in got for i in part]
    assert sorted(flat) == list(range(12))
    assert [len(p) for p in got] == [4, 4, 4]


def test_uneven_dataset_is_padded_so_every_rank_runs_the_same_steps():
    got = parts(10, 3, shuffle=True)
    flat = [i for part in got for i in part]
    assert [len(p) for p in got] == [4, 4, 4]
    assert set(flat) == set(range(10))  # covers
    assert len(flat) - len(set(flat)) == 2  # only the two pads repeat


def test_drop_last_drops_the_tail_and_keeps_parts_disjoint():
    got = parts(10, 3, shuffle=True, drop_last=True)
    flat = [i for part in got for i in part]
    assert [len(p) for p in got] == [3, 3, 3]
    assert len(set(flat)) == 9


def test_epochs_reshuffle_and_one_epoch_is_reproducible():
    assert parts(100, 2, epoch=0) == parts(100, 2, epoch=0)
    assert parts(100, 2, epoch=0) != parts(100, 2, epoch=1)
    assert parts(100, 2, epoch=0, seed=1) != parts(100, 2, epoch=0, seed=0)
    assert parts(10, 2, epoch=3, shuffle=False) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_bad_rank_is_a_clear_error():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        sky.DistributedSampler(range(4), num_replicas=2, rank=2)


def test_off_a_pool_it_says_where_it_works():
    with pytest.raises(RuntimeError, match="only available inside a task"):
        sky.DistributedSampler(range(4))


def test_it_is_a_torch_sampler_that_a_dataloader_uses():
    torch_data = pytest.importorskip(
        "torch.utils.data", reason="CI installs torch (.ci/deps/dist.txt)"
    )
    sampler = sky.DistributedSampler(range(10), num_replicas=2, rank=1, shuffle=False)
    assert isinstance(sampler, torch_data.Sampler)
    assert isinstance(sampler, DistributedSampler)
    loader = torch_data.DataLoader(list(range(100, 110)), sampler=sampler, batch_size=2)
    assert [b.tolist() for b in loader] == [[101, 103], [105, 107], [109]]


@sky.compute
def shares(size: int) -> dict:
    sampler = sky.DistributedSampler(range(size), shuffle=True, seed=7)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    # every node also works out every rank's part, to compare across nodes
    everyone = [
        list(sky.DistributedSampler(range(size), seed=7, num_replicas=2, rank=r))
        for r in range(2)
    ]
    return {
        "epochs": epochs,
        "everyone": everyone,
        "shard": [sky.shard(list(range(size)), shuffle=True, seed=s) for s in (1, 2)],
    }


def test_on_the_pool_each_node_takes_its_part_of_one_permutation(pool):
    first, second = shares(1000) @ pool
    assert first["everyone"] == second["everyone"]  # the same on every node
    for epoch in range(2):
        a, b = set(first["epochs"][epoch]), set(second["epochs"][epoch])
        assert not a & b
        assert a | b == set(range(1000))
    assert first["epochs"][0] != first["epochs"][1]  # reshuffled per epoch
    assert first["epochs"][0] == first["everyone"][0]
    for seed in range(2):
        a, b = set(first["shard"][seed]), set(second["shard"][seed])
        assert not a & b
        assert a | b == set(range(1000))
    assert first["shard"][0] != first["shard"][1]  # another seed, another order
