"""The lesson's CNN: structure, shapes, the bias rule, input checks, and a real-MNIST check."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actscope.nn.cnn import CNN, cnn, conv_blocks
from actscope.nn.init import init_cnn
from actscope.nn.layers import GeneralRelu
from actscope.nn.norms import BatchNorm, make_norm


def test_default_cnn_is_the_lessons_model():
    model = cnn()
    kids = list(model.children())
    assert isinstance(model, nn.Sequential) and len(kids) == 8
    assert [type(k) for k in kids[5:]] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]
    blocks = conv_blocks(model)
    assert blocks == kids[:5]
    convs = [b.conv for b in blocks]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 16), (16, 32),
                                                               (32, 64), (64, 64)]
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 4
    assert all(c.stride == (2, 2) for c in convs)
    assert (kids[7].in_features, kids[7].out_features) == (64, 10)


def test_output_shape_and_spatial_sizes_on_mnist_sized_input():
    model = cnn()
    x = torch.randn(3, 1, 28, 28)
    sizes = []
    for block in conv_blocks(model):
        x = block(x)
        sizes.append(x.shape[-1])
    assert sizes == [14, 7, 4, 2, 1]
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_custom_channels_inputs_and_outputs():
    model = cnn(nfs=(4, 6), c_in=3, n_out=5)
    assert len(conv_blocks(model)) == 2
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 5)  # the digits dataset's 8x8 works too
    assert cnn(nfs=[16])(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("norm", ["none", "batch", "torch_batch", "layer", "instance", "group",
                                  "running_batch"])
def test_every_norm_builds_trains_a_step_and_follows_the_bias_rule(norm):
    if norm == "running_batch":
        pytest.importorskip("actscope.nn.running_batchnorm")
    torch.manual_seed(0)
    model = cnn(nfs=(4, 8, 8), norm=norm)
    for block in conv_blocks(model):
        assert (block.conv.bias is None) == (norm != "none")
        expected = make_norm(norm, block.conv.out_channels)
        assert type(getattr(block, "norm", None)) is type(expected)
    loss = F.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_act_factory_reaches_every_block():
    model = cnn(act=lambda: GeneralRelu(0.1, 0.4))
    assert all((b.act.leak, b.act.sub) == (0.1, 0.4) for b in conv_blocks(model))
    assert len({id(b.act) for b in conv_blocks(model)}) == 5


@pytest.mark.parametrize("nfs,match", [((), "non-empty sequence"), ([], "non-empty sequence"),
                                       ("8,16", "non-empty sequence"), (8, "non-empty sequence"),
                                       ((8, 0), r"nfs\[1\] must be a positive int"),
                                       ((8, -16), r"nfs\[1\] must be a positive int"),
                                       ((8.0,), r"nfs\[0\] must be a positive int"),
                                       ((True, 8), r"nfs\[0\] must be a positive int")])
def test_malformed_nfs_is_a_clear_value_error(nfs, match):
    with pytest.raises(ValueError, match=match):
        cnn(nfs=nfs)


def test_bad_c_in_n_out_and_norm():
    with pytest.raises(ValueError, match="c_in must be a positive int"):
        cnn(c_in=0)
    with pytest.raises(ValueError, match="n_out must be a positive int"):
        cnn(n_out=-1)
    with pytest.raises(ValueError, match="valid names"):
        cnn(norm="batchnorm")


def test_flat_mnist_input_gets_a_helpful_error():
    model = cnn()
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\), got \(5, 784\)"
                       r"; flat images\? reshape with xb\.view\(-1, 1, 28, 28\)"):
        model(torch.randn(5, 784))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        cnn(c_in=3)(torch.randn(2, 1, 8, 8))


def test_slices_are_plain_sequentials_and_conv_blocks_unwraps_only_known_wrappers():
    model = cnn()
    tail = model[1:]
    assert type(tail) is nn.Sequential and len(tail) == 7
    assert tail(torch.randn(2, 8, 14, 14)).shape == (2, 10)
    assert isinstance(model[0], nn.Sequential) and type(model) is CNN
    assert conv_blocks(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))) == []
    assert conv_blocks(nn.DataParallel(model)) == conv_blocks(model)
    # the one unwrap (actscope.dist.unwrap_model) also takes nested wrappers off
    assert conv_blocks(nn.DataParallel(nn.DataParallel(model))) == conv_blocks(model)


def _mnist_subset(mnist_dir, n_train: int, n_valid: int):
    """The first n_train training images and n_valid from the lesson's validation split."""
    from actscope.data.idx import read_idx

    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")  # uint8 (60000, 28, 28)
    labels = torch.from_numpy(read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")).long()
    xt = torch.from_numpy(images[:n_train]).float()
    xv = torch.from_numpy(images[50_000:50_000 + n_valid]).float()
    mean, std = xt.mean(), xt.std()  # the training subset's statistics (cheap, close enough)
    return ((xt - mean) / std)[:, None], labels[:n_train], ((xv - mean) / std)[:, None], \
        labels[50_000:50_000 + n_valid]


@pytest.mark.mnist
def test_our_batchnorm_trains_the_cnn_on_real_mnist_like_torchs(mnist_dir):
    """Same init, same batches: our BatchNorm and nn.BatchNorm2d follow the same trajectory."""
    xt, yt, xv, yv = _mnist_subset(mnist_dir, n_train=2048, n_valid=1000)
    torch.manual_seed(0)
    ours = init_cnn(cnn(norm="batch"))
    ref = cnn(norm="torch_batch")
    ref.load_state_dict(ours.state_dict())  # the same names: a drop-in replacement
    assert isinstance(ours[0].norm, BatchNorm) and isinstance(ref[0].norm, nn.BatchNorm2d)
    results = []
    for model in (ours, ref):
        # lr 0.2: at the lesson's 0.4, float32 rounding differences grow chaotically after a spike
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        losses = []
        for i in range(0, len(xt), 32):
            loss = F.cross_entropy(model(xt[i:i + 32]), yt[i:i + 32])
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.detach())
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean()
        results.append((torch.stack(losses), acc))
    (ours_losses, ours_acc), (ref_losses, ref_acc) = results
    torch.testing.assert_close(ours_losses, ref_losses, rtol=1e-4, atol=1e-4)  # all 64 steps
    assert ours_losses[-8:].mean() < 0.5 * ours_losses[:4].mean()
    assert ours_acc > 0.85, f"our BatchNorm reached only {ours_acc:.3f} on 1000 valid images"
    assert abs(ours_acc - ref_acc) <= 0.005


@pytest.mark.slow  # the first torch.compile in a process imports dynamo: several seconds
@pytest.mark.parametrize("norm", ["batch", "layer", "instance"])
def test_compiles_as_one_graph_so_forward_has_no_host_sync(norm):
    """fullgraph=True fails on any graph break, e.g. a .item() or a data-dependent branch."""
    torch.manual_seed(0)
    model = cnn(nfs=(4, 8), norm=norm, act=lambda: GeneralRelu(0.1, 0.4, 6.0))
    reference = cnn(nfs=(4, 8), norm=norm, act=lambda: GeneralRelu(0.1, 0.4, 6.0))
    reference.load_state_dict(model.state_dict())
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # eager: no C++ toolchain
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(compiled(x), reference(x))
    torch.testing.assert_close(model.state_dict(), reference.state_dict())  # same buffer updates
