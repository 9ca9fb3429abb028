"""data.sampling: the one seeded subset of a list, and the training sampler."""
import pytest

from data.sampling import ShardedShuffleSampler, seeded_subset


def _items(counts):
    return [(f"{label}_{i}", label) for label, count in enumerate(counts) for i in range(count)]


def test_a_total_keeps_every_class_share_exactly():
    items = _items([60, 30, 10])
    positions = seeded_subset(items, seed=3, total=20)
    assert len(positions) == 20 and positions == sorted(positions)
    assert [sum(items[p][1] == k for p in positions) for k in range(3)] == [12, 6, 2]
    assert positions == seeded_subset(items, seed=3, total=20)
    assert positions != seeded_subset(items, seed=4, total=20)


def test_largest_remainders_fill_the_total():
    items = _items([5, 5, 5])            # 7 of 15: shares 2.33 each; the first by stable order gets 3
    positions = seeded_subset(items, seed=0, total=7)
    assert sorted(sum(items[p][1] == k for p in positions) for k in range(3)) == [2, 2, 3]


def test_per_class_caps_each_class_and_combines_with_a_total():
    items = _items([10, 3, 3])
    positions = seeded_subset(items, seed=0, per_class=3)
    assert [sum(items[p][1] == k for p in positions) for k in range(3)] == [3, 3, 3]
    both = seeded_subset(items, seed=0, total=8, per_class=2)      # shares 5, 2 (rounded), 1 -> capped at 2
    assert [sum(items[p][1] == k for p in both) for k in range(3)] == [2, 2, 1]


def test_no_limit_or_a_short_list_keeps_everything_in_order():
    items = _items([4, 2])
    everything = list(range(6))
    assert seeded_subset(items, seed=0) == everything
    assert seeded_subset(items, seed=0, total=6) == everything
    assert seeded_subset(items, seed=0, total=100, per_class=4) == everything
    assert seeded_subset([], seed=0, total=3) == []


def test_negative_sizes_are_refused():
    with pytest.raises(ValueError, match="total=-1"):
        seeded_subset(_items([3]), seed=0, total=-1)


def test_sharded_sampler_ranks_concatenate_to_the_single_process_batches():
    single = ShardedShuffleSampler(22, 4, 0, 1, seed=3).indices()
    ranks = [ShardedShuffleSampler(22, 4, r, 2, seed=3).indices() for r in range(2)]
    assert len(single) == 20 and all(len(r) == 10 for r in ranks)
    for step in range(5):
        merged = ranks[0][2 * step:2 * step + 2] + ranks[1][2 * step:2 * step + 2]
        assert merged == single[4 * step:4 * step + 4]


def test_sharded_sampler_yields_epoch_keys_and_reshuffles_per_epoch():
    sampler = ShardedShuffleSampler(12, 4, 0, 1, seed=0)
    sampler.set_epoch(1)
    first = list(sampler)
    assert all(epoch == 1 for epoch, _ in first) and sorted(i for _, i in first) == list(range(12))
    sampler.set_epoch(2)
    assert [i for _, i in sampler] != [i for _, i in first]
