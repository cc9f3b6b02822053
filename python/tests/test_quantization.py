"""soma.quantization and soma.autocast against torch 1.13: quantize_dynamic's int8 weights and
scales equal torch's per-channel ones and its outputs torch's quantized linear (onednn engine,
full 8-bit range); static prepare/convert on a small CNN; observers; autocast's products equal
float32 products of the bfloat16-rounded operands, forward and backward; fit(autocast=...)."""
import pytest
import soma
import soma.nn as nn
import soma.nn.functional as F
import soma.quantization as q


def to_torch(torch, t):
    return torch.from_numpy(t.detach().numpy().copy())


def test_quantize_dynamic_matches_torch(torch):
    from torch.ao.quantization import per_channel_dynamic_qconfig
    torch.backends.quantized.engine = "onednn"
    tl = torch.nn.Linear(37, 11)
    model = nn.Sequential(nn.Linear(37, 11), nn.ReLU())
    with soma.no_grad():
        model[0].weight.copy_(soma.from_numpy(tl.weight.detach().numpy().copy()))
        model[0].bias.copy_(soma.from_numpy(tl.bias.detach().numpy().copy()))
    qm = q.quantize_dynamic(model)
    assert q.is_quantized(qm) and not q.is_quantized(model)
    layer = qm[0]
    assert isinstance(layer, q.DynamicQuantLinear)
    assert (layer.in_features, layer.out_features) == (37, 11)
    tq = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(tl),
                                                {torch.nn.Linear: per_channel_dynamic_qconfig},
                                                dtype=torch.qint8)
    tw, _ = tq[0]._packed_params._weight_bias()
    sd = qm.state_dict()
    assert sd["0.weight"].dtype == soma.int8
    assert torch.equal(torch.from_numpy(sd["0.weight"].numpy()), tw.int_repr())
    assert torch.equal(to_torch(torch, sd["0.weight_scale"]), tw.q_per_channel_scales().float())
    x = soma.randn(9, 37) * 2
    y = qm(x)
    ty = torch.relu(torch.ops.quantized.linear_dynamic(to_torch(torch, x),
                                                       tq[0]._packed_params._packed_params,
                                                       reduce_range=False))
    assert torch.allclose(to_torch(torch, y), ty, rtol=2e-6, atol=2e-6)
    # dequantized_weight is scale * int8
    dq = layer.dequantized_weight()
    assert torch.allclose(to_torch(torch, dq), tw.dequantize(), rtol=0, atol=0)
    assert q.DynamicQuantLinear.from_float(model[0]).out_features == 11


def test_choose_qparams_matches_torch(torch):
    for lo, hi in [(-1.0, 1.0), (0.0, 3.0), (-2.5, 0.25), (1e-7, 2e-7)]:
        scale, zp = torch._choose_qparams_per_tensor(torch.tensor([lo, hi]), False)
        assert q.choose_qparams(lo, hi) == (pytest.approx(scale, rel=1e-7, abs=0), zp)


def test_observers_match_torch(torch):
    from torch.ao.quantization.observer import MinMaxObserver as TMinMax
    x = soma.randn(200) * 3
    o = q.MinMaxObserver()
    assert isinstance(o, q.Observer) and isinstance(q.HistogramObserver(), q.Observer)
    assert (o(x) - x).abs().max().item() == 0  # returns its input
    t = TMinMax()
    t(to_torch(torch, x))
    scale, zp = t.calculate_qparams()
    assert o.qparams() == (pytest.approx(float(scale), rel=1e-7), int(zp))
    h = q.HistogramObserver()
    h.observe(x)
    lo, hi = h.range()
    assert lo <= hi
    with pytest.raises(soma.Error, match="nothing was observed"):
        q.MinMaxObserver().qparams()


def test_static_prepare_convert():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    model.eval()
    prepared = q.prepare(model, observer="minmax")
    assert isinstance(prepared[0], q.Observed)
    assert isinstance(prepared[0].layer, nn.Conv2d)
    x = soma.randn(16, 1, 8, 8)
    with soma.no_grad():
        ref = model(x)
        prepared(x)
        qm = q.convert(prepared)
    conv = qm[0]
    assert isinstance(conv, q.QuantizedConv2d) and conv.relu
    assert (conv.in_channels, conv.out_channels) == (1, 4)
    lin = qm[5]
    assert isinstance(lin, q.QuantizedLinear) and not lin.relu
    assert (lin.in_features, lin.out_features) == (64, 5)
    assert prepared[0].qparams()[0] > 0
    with soma.no_grad():
        y = qm(x)
    err = (y - ref).abs().max().item()
    assert 0 < err < 0.05 * ref.abs().max().item()
    with pytest.raises(soma.Error, match="observer"):
        q.prepare(model, observer="kl")


def test_autocast_products_are_bf16(torch):
    a = soma.randn(17, 33, requires_grad=True)
    w = soma.randn(9, 33, requires_grad=True)
    assert not soma.is_autocast_enabled()
    with soma.autocast():
        assert soma.is_autocast_enabled()
        y = F.linear(a, w)
        m = a @ w.t()
    assert not soma.is_autocast_enabled()
    ta, tw = to_torch(torch, a), to_torch(torch, w)
    ref = ta.bfloat16().float() @ tw.bfloat16().float().t()
    assert torch.allclose(to_torch(torch, y), ref, rtol=1e-5, atol=1e-5)
    assert torch.allclose(to_torch(torch, m), ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(to_torch(torch, y), ta @ tw.t(), rtol=1e-6, atol=1e-6)
    # the backward products are bf16 too, with the guard gone
    g = soma.randn(17, 9)
    y.backward(g)
    tg = to_torch(torch, g).bfloat16().float()
    assert torch.allclose(to_torch(torch, a.grad), tg @ tw.bfloat16().float(), rtol=1e-5, atol=1e-5)
    assert torch.allclose(to_torch(torch, w.grad), tg.t() @ ta.bfloat16().float(), rtol=1e-5,
                          atol=1e-5)
    with pytest.raises(soma.Error, match="bfloat16 only"):
        soma.autocast(dtype=soma.float16)
    with pytest.raises(soma.Error, match="CPU only"):
        soma.autocast("cuda")

    @soma.autocast()
    def f():
        return soma.is_autocast_enabled()
    assert f() and not soma.is_autocast_enabled()
    with soma.autocast(enabled=False):
        assert not soma.is_autocast_enabled()


def test_fit_with_autocast():
    soma.manual_seed(1)
    x = soma.randn(256, 10)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    ds = soma.data.TensorDataset(x, y)
    loader = soma.data.DataLoader(ds, batch_size=32, shuffle=True, seed=0)
    opt = soma.optim.Adam(model.parameters(), lr=1e-2)
    h = soma.fit(model, opt, nn.CrossEntropyLoss(), loader, epochs=5, verbose=False,
                 autocast=soma.bfloat16)
    assert h.history["loss"][-1] < h.history["loss"][0]
    with pytest.raises(soma.Error, match="autocast"):
        soma.fit(model, opt, nn.CrossEntropyLoss(), loader, epochs=1, verbose=False,
                 autocast=soma.float64)
