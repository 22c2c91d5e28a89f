"""Each workload's FLOP count against an independent count written out by hand, and against its model."""

import pytest

from redline.workloads import WORKLOADS, get


# Hand counts, per training sample: 2 FLOPs per multiply-add; forward + weight gradient for every
# matmul/conv layer, + input gradient for layers with something trainable before them.
HAND = {
    # Dense 784->128: fwd 2*784*128 = 200704, wgrad 200704, no input grad (first layer)
    # Dense 128->10:  fwd 2*128*10 = 2560, wgrad 2560, igrad 2560
    "mlp": 200704 + 200704 + 2560 * 3,
    # Conv 3x3x1->32 on 28x28 valid -> 26x26x32: 26*26*32*9 = 194688 MACs -> 389376 FLOPs; fwd + wgrad
    # Conv 3x3x32->64 -> 24x24x64: 24*24*64*288 = 10616832 MACs -> 21233664 FLOPs; fwd + wgrad + igrad
    # Dense 12*12*64=9216 -> 10: 92160 MACs -> 184320 FLOPs; x3
    "cnn": 389376 * 2 + 21233664 * 3 + 184320 * 3,
    # Conv 3x3x3->16 stride 2 same on 32x32 -> 16x16x16: 16*16*16*27 = 110592 MACs -> 221184; fwd + wgrad
    # Dense 16 -> 10: 160 MACs -> 320; x3
    "input": 221184 * 2 + 320 * 3,
    # Dense 32->32 after a trainable embedding: 1024 MACs -> 2048; x3. Dense 32->2: 64 MACs -> 128; x3
    "embed": 2048 * 3 + 128 * 3,
    # Dense 16->32: 512 MACs -> 1024; x2. Dense 32->1: 32 MACs -> 64; x3
    "tiny": 1024 * 2 + 64 * 3,
    # Dense 64->64: 4096 MACs -> 8192; x2 (first layer). Dense 64->10: 640 MACs -> 1280; x3
    "generator": 8192 * 2 + 1280 * 3,
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_flops_match_the_hand_count(name):
    assert WORKLOADS[name].flops_per_sample == HAND[name]


def _matmul_shapes(model):
    """(kernel shape) of every Dense/Conv layer, in order."""
    return [tuple(layer.kernel.shape) for layer in model.layers if hasattr(layer, "kernel")]


def test_models_have_the_layers_the_counts_assume():
    pytest.importorskip("keras")
    assert _matmul_shapes(get("mlp").build_model()) == [(784, 128), (128, 10)]
    cnn = get("cnn").build_model()
    assert _matmul_shapes(cnn) == [(3, 3, 1, 32), (3, 3, 32, 64), (9216, 10)]
    assert tuple(cnn.layers[1].output.shape) == (None, 24, 24, 64)
    inp = get("input").build_model()
    assert _matmul_shapes(inp) == [(3, 3, 3, 16), (16, 10)] and tuple(inp.layers[0].output.shape) == (None, 16, 16, 16)
    assert _matmul_shapes(get("embed").build_model()) == [(32, 32), (32, 2)]
    assert _matmul_shapes(get("tiny").build_model()) == [(16, 32), (32, 1)]
    assert _matmul_shapes(get("generator").build_model()) == [(64, 64), (64, 10)]


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_data_is_deterministic_and_sized(name):
    w = WORKLOADS[name]
    if w.generator is not None:
        first = list(w.generator())
        assert len(first) == w.samples and w.samples % w.batch_size == 0
        again = [x for shard in range(3) for x in w.generator(shard=shard, num_shards=3)]
        assert sorted(float(x[0].sum()) for x in first) == sorted(float(x[0].sum()) for x in again)  # shards cover it once
        assert first[0][0].shape == (64,)
        return
    x1, y1 = w.make_data(0)
    x2, y2 = w.make_data(0)
    assert len(x1) == len(y1) == w.samples and w.samples % w.batch_size == 0
    assert (x1 == x2).all() and (y1 == y2).all()
    assert not (w.make_data(1)[0] == x1).all()


def test_unknown_workload():
    from redline import UsageError

    with pytest.raises(UsageError, match="unknown workload 'resnet': valid are mlp, cnn, input, embed, tiny, generator"):
        get("resnet")
