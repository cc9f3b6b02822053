"""soma.nn against torch.nn: every layer class and loss, built from the same arguments, with
soma's weights copied into the torch twin, gives torch's outputs and gradients (input and
parameters) on random inputs; the Module protocol (registration by attribute, hooks, modes,
state dicts, deepcopy) and the errors."""
import copy

import pytest
import soma
import soma.nn as nn
import soma.nn.functional as F


def to_torch(torch, t, requires_grad=False):
    out = torch.from_numpy(t.detach().numpy().copy())
    return out.requires_grad_(requires_grad)


def close(np, a, b, atol=1e-5, rtol=1e-4):
    a = a.detach().numpy() if hasattr(a, "numpy") else a
    b = b.detach().numpy() if hasattr(b, "numpy") else b
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)


def twin(torch, module, name, args, kwargs):
    """The torch layer of the same class and arguments, with soma's weights and buffers."""
    t = getattr(torch.nn, name)(*args, **kwargs)
    state = {k: to_torch(torch, v) for k, v in module.state_dict().items()}
    missing = t.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys, missing
    assert all(k.endswith("num_batches_tracked") for k in missing.missing_keys), missing
    return t


LAYERS = [
    ("Linear", (5, 3), {}, (4, 5)),
    ("Linear", (5, 3), {"bias": False}, (2, 7, 5)),
    ("Conv1d", (3, 4, 3), {"stride": 2, "padding": 1}, (2, 3, 9)),
    ("Conv2d", (3, 4, 3), {"padding": 1}, (2, 3, 6, 5)),
    ("Conv2d", (4, 6, (3, 2)), {"groups": 2, "dilation": 2, "stride": (1, 2)}, (2, 4, 9, 8)),
    ("Conv2d", (2, 3, 3), {"padding": "same", "bias": False}, (1, 2, 5, 5)),
    ("ConvTranspose2d", (3, 2, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 3, 4, 4)),
    ("ConvTranspose1d", (3, 2, 4), {"stride": 3}, (2, 3, 5)),
    ("MaxPool2d", (2,), {}, (2, 3, 6, 6)),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 2, 7, 7)),
    ("AvgPool2d", (2,), {}, (2, 3, 6, 4)),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, (1, 2, 7, 7)),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, (2, 3, 7, 8)),
    ("AdaptiveMaxPool2d", (2,), {}, (2, 3, 6, 6)),
    ("BatchNorm1d", (5,), {}, (8, 5)),
    ("BatchNorm2d", (3,), {"momentum": 0.2, "eps": 1e-3}, (4, 3, 5, 5)),
    ("LayerNorm", (6,), {}, (3, 4, 6)),
    ("LayerNorm", ((4, 6),), {"elementwise_affine": False}, (3, 4, 6)),
    ("GroupNorm", (2, 4), {}, (3, 4, 5)),
    ("Flatten", (), {}, (2, 3, 4)),
    ("Flatten", (0, 1), {}, (2, 3, 4)),
    ("Unflatten", (1, (2, 3)), {}, (4, 6)),
    ("Upsample", (), {"scale_factor": 2}, (1, 2, 3, 3)),
    ("Identity", (), {}, (3, 4)),
    ("ReLU", (), {}, (3, 4)),
    ("Sigmoid", (), {}, (3, 4)),
    ("Tanh", (), {}, (3, 4)),
    ("LeakyReLU", (0.2,), {}, (3, 4)),
    ("GELU", (), {}, (3, 4)),
    ("ELU", (0.5,), {}, (3, 4)),
    ("SELU", (), {}, (3, 4)),
    ("CELU", (1.5,), {}, (3, 4)),
    ("SiLU", (), {}, (3, 4)),
    ("Mish", (), {}, (3, 4)),
    ("Softplus", (2.0, 5.0), {}, (3, 4)),
    ("Hardtanh", (-0.5, 0.7), {}, (3, 4)),
    ("Hardsigmoid", (), {}, (3, 4)),
    ("Hardswish", (), {}, (3, 4)),
    ("LogSigmoid", (), {}, (3, 4)),
    ("PReLU", (4,), {"init": 0.1}, (3, 4)),
    ("GLU", (), {"dim": 1}, (3, 4)),
    ("Softmax", (1,), {}, (3, 4)),
    ("LogSoftmax", (), {"dim": 0}, (3, 4)),
    ("Softmin", (1,), {}, (3, 4)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS,
                         ids=[f"{n}-{i}" for i, (n, *_) in enumerate(LAYERS)])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_layer_matches_torch(torch, np, name, args, kwargs, shape, training):
    m = getattr(nn, name)(*args, **kwargs)
    assert type(m).__name__ == name and isinstance(m, nn.Module)
    t = twin(torch, m, name, args, kwargs)
    m.train(training)
    t.train(training)
    x = soma.randn(*shape, requires_grad=True)
    xt = to_torch(torch, x, requires_grad=True)
    y, yt = m(x), t(xt)
    close(np, y, yt)
    g = soma.randn(*y.shape)
    y.backward(g)
    yt.backward(to_torch(torch, g))
    close(np, x.grad, xt.grad)
    torch_params = dict(t.named_parameters())
    for key, p in m.named_parameters():
        close(np, p.grad, torch_params[key].grad)
    for key, b in m.named_buffers():  # running statistics after a training step
        close(np, b, dict(t.named_buffers())[key])


def test_dropout(torch):
    d = nn.Dropout(0.5)
    x = soma.ones(1000)
    assert soma.equal(d.eval()(x), x)
    y = d.train()(x)
    kept = (y != 0).sum().item()
    assert 400 < kept < 600 and set(y.tolist()) <= {0.0, 2.0}


LOSSES = [
    ("MSELoss", {}, "reg"), ("MSELoss", {"reduction": "sum"}, "reg"),
    ("L1Loss", {"reduction": "none"}, "reg"),
    ("BCELoss", {}, "prob"), ("BCEWithLogitsLoss", {}, "bin"),
    ("CrossEntropyLoss", {}, "cls"), ("CrossEntropyLoss", {"label_smoothing": 0.1}, "cls"),
    ("CrossEntropyLoss", {"ignore_index": 1, "reduction": "sum"}, "cls"),
    ("NLLLoss", {}, "logp"),
]


@pytest.mark.parametrize("name,kwargs,kind", LOSSES, ids=[f"{n}-{i}" for i, (n, *_) in
                                                          enumerate(LOSSES)])
def test_loss_matches_torch(torch, np, name, kwargs, kind):
    x = soma.randn(6, 4)
    if kind == "prob":
        x = soma.sigmoid(x)
    if kind == "logp":
        x = soma.log_softmax(x, 1)
    x = x.detach().requires_grad_()
    if kind in ("cls", "logp"):
        y = soma.randint(0, 4, (6,))
    elif kind in ("prob", "bin"):
        y = soma.rand(6, 4)
    else:
        y = soma.randn(6, 4)
    xt = to_torch(torch, x, True)
    loss = getattr(nn, name)(**kwargs)(x, y)
    loss_t = getattr(torch.nn, name)(**kwargs)(xt, to_torch(torch, y))
    close(np, loss, loss_t)
    loss.sum().backward()
    loss_t.sum().backward()
    close(np, x.grad, xt.grad)


def test_class_weights_and_pos_weight(torch, np):
    x, y = soma.randn(5, 3), soma.randint(0, 3, (5,))
    w = soma.tensor([0.2, 1.0, 3.0])
    close(np, F.cross_entropy(x, y, w),
          torch.nn.functional.cross_entropy(to_torch(torch, x), to_torch(torch, y), to_torch(torch, w)))
    close(np, nn.NLLLoss(w)(soma.log_softmax(x, 1), y),
          torch.nn.NLLLoss(to_torch(torch, w))(torch.log_softmax(to_torch(torch, x), 1),
                                                to_torch(torch, y)))
    z, t = soma.randn(4, 3), soma.rand(4, 3)
    pw = soma.tensor([1.0, 2.0, 0.5])
    close(np, F.binary_cross_entropy_with_logits(z, t, pos_weight=pw),
          torch.nn.functional.binary_cross_entropy_with_logits(
              to_torch(torch, z), to_torch(torch, t), pos_weight=to_torch(torch, pw)))


def test_functional_matches_torch(torch, np):
    tf = torch.nn.functional
    x = soma.randn(2, 3, 8, 8)
    w, b = soma.randn(4, 3, 3, 3), soma.randn(4)
    X, W, B = (to_torch(torch, v) for v in (x, w, b))
    close(np, F.conv2d(x, w, b, stride=2, padding=1), tf.conv2d(X, W, B, stride=2, padding=1))
    close(np, F.max_pool2d(x, 2), tf.max_pool2d(X, 2))
    close(np, F.avg_pool2d(x, 3, stride=1, padding=1), tf.avg_pool2d(X, 3, stride=1, padding=1))
    close(np, F.adaptive_avg_pool2d(x, 1), tf.adaptive_avg_pool2d(X, 1))
    v = soma.randn(5, 7)
    wl, bl = soma.randn(3, 7), soma.randn(3)
    close(np, F.linear(v, wl, bl), tf.linear(*(to_torch(torch, a) for a in (v, wl, bl))))
    V = to_torch(torch, v)
    for fn, ref in [(F.relu, tf.relu), (F.gelu, tf.gelu), (F.silu, tf.silu), (F.selu, tf.selu),
                    (F.mish, tf.mish), (F.hardswish, tf.hardswish), (F.logsigmoid, tf.logsigmoid)]:
        close(np, fn(v), ref(V))
    close(np, F.softmax(v, 1), tf.softmax(V, 1))
    close(np, F.log_softmax(v, 0), tf.log_softmax(V, 0))
    close(np, F.leaky_relu(v, 0.3), tf.leaky_relu(V, 0.3))
    close(np, F.pad(v, [1, 2, 0, 1], value=0.5), tf.pad(V, [1, 2, 0, 1], value=0.5))
    close(np, F.layer_norm(v, [7]), tf.layer_norm(V, [7]))
    rm, rv = soma.zeros(3), soma.ones(3)
    y = soma.randn(4, 3)
    close(np, F.batch_norm(y, rm, rv, training=True),
          tf.batch_norm(to_torch(torch, y), torch.zeros(3), torch.ones(3), training=True))
    close(np, F.mse_loss(v, v * 0.5), tf.mse_loss(V, V * 0.5))
    assert nn.init.calculate_gain("tanh") == pytest.approx(torch.nn.init.calculate_gain("tanh"))
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2))


class MyDenseLayer(nn.Module):
    """The lecture's user-defined layer."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = nn.Parameter(soma.randn(n_in, n_out))
        self.b = nn.Parameter(soma.randn(1, n_out))

    def forward(self, inputs):
        return soma.relu(soma.matmul(inputs, self.w) + self.b)


def test_user_defined_layer_registers_and_trains_like_torch(torch, np):
    layer = MyDenseLayer(3, 2)
    assert [n for n, _ in layer.named_parameters()] == ["w", "b"]
    assert sorted(layer.state_dict()) == ["b", "w"]
    assert isinstance(layer.w, nn.Parameter) and layer.w.requires_grad
    x = soma.randn(4, 3)
    y = layer(x)
    w, b = to_torch(torch, layer.w, True), to_torch(torch, layer.b, True)
    yt = torch.relu(to_torch(torch, x) @ w + b)
    close(np, y, yt)
    y.sum().backward()
    yt.sum().backward()
    close(np, layer.w.grad, w.grad)
    close(np, layer.b.grad, b.grad)


def test_python_and_cpp_layers_mix_in_sequential(np):
    model = nn.Sequential(MyDenseLayer(2, 8), nn.Linear(8, 3))
    assert sorted(model.state_dict()) == ["0.b", "0.w", "1.bias", "1.weight"]
    assert type(model[0]) is MyDenseLayer and type(model[1]) is nn.Linear
    assert len(model) == 2 and [type(m) for m in model] == [MyDenseLayer, nn.Linear]
    x = soma.randn(5, 2)
    manual = model[1](model[0](x))
    assert soma.equal(model(x), manual)
    opt = soma.optim.SGD(model.parameters(), lr=0.1)
    before = model[0].w.clone()
    F.cross_entropy(model(x), soma.tensor([0, 1, 2, 0, 1])).backward()
    opt.step()
    assert not soma.equal(model[0].w, before)  # the Python layer's parameter trained
    assert "MyDenseLayer()" in repr(model)
    del model  # the Python layer outlives nothing it needs
    import gc
    gc.collect()


def test_python_layer_kept_alive_by_its_container():
    model = nn.Sequential(MyDenseLayer(2, 3))
    import gc
    gc.collect()
    assert model(soma.randn(1, 2)).shape == (1, 3)


def test_attribute_registration_protocol():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.register_buffer("steps", soma.zeros(1))
            self.scale = 2.0  # a plain attribute

        def forward(self, x):
            return self.fc(x) * self.scale

    net = Net()
    assert sorted(net.state_dict()) == ["fc.bias", "fc.weight", "steps"]
    assert [n for n, _ in net.named_children()] == ["fc"]
    net.steps = soma.ones(1)  # a tensor assigned to a buffer's name replaces the buffer
    assert net.state_dict()["steps"].item() == 1.0
    net.fc = nn.Linear(4, 5)  # reassigning a child replaces it
    assert net(soma.randn(2, 4)).shape == (2, 5)
    net.extra = nn.Parameter(soma.zeros(2))
    assert "extra" in dict(net.named_parameters())
    del net.extra
    assert "extra" not in dict(net.named_parameters())
    assert net.fc.weight.shape == (5, 4)  # C++ parameters through __getattr__
    with pytest.raises(AttributeError, match="nope"):
        net.nope
    assert len(list(net.modules())) == 2
    assert [n for n, _ in net.named_modules()] == ["", "fc"]


def test_modes_hooks_zero_grad_and_state_dict():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.3), nn.Linear(3, 2))
    assert model.eval() is model and not model.training and not model[1].training
    model.train()
    assert model[1].training
    seen = []
    h = model[0].register_forward_hook(lambda m, inp, out: seen.append(out.shape) or out * 0)
    y = model.eval()(soma.randn(4, 3))
    assert seen == [(4, 3)]
    assert soma.equal(y, model[2](soma.zeros(4, 3)))  # the hook's output replaced the layer's
    h.remove()
    model(soma.randn(1, 3))
    assert len(seen) == 1
    pre = model[2].register_forward_pre_hook(lambda m, inp: inp[0] * 0)
    assert soma.equal(model(soma.randn(2, 3)), model[2].bias.expand(2, 2))
    pre.remove()
    model(soma.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    other = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.3), nn.Linear(3, 2))
    other.load_state_dict(model.state_dict())
    x = soma.randn(2, 3)
    assert soma.equal(other.eval()(x), model(x))
    with pytest.raises(soma.Error, match="size mismatch|shape"):
        nn.Linear(3, 4).load_state_dict(nn.Linear(3, 2).state_dict())
    with pytest.raises(soma.Error, match="missing"):
        nn.Linear(3, 4).load_state_dict({"weight": soma.zeros(4, 3)})


def test_deepcopy_is_independent():
    model = nn.Sequential(MyDenseLayer(2, 3), nn.Linear(3, 2), nn.BatchNorm1d(2))
    clone = copy.deepcopy(model)
    x = soma.randn(4, 2)
    assert soma.equal(clone.eval()(x), model.eval()(x))
    with soma.no_grad():
        clone[0].w.add_(1.0)
        clone[1].weight.mul_(2.0)
    assert not soma.equal(clone(x), model(x))
    assert type(clone[0]) is MyDenseLayer


def test_module_conversions_and_summary():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    assert m.double()[0].weight.dtype is soma.float64
    assert m.float()[0].weight.dtype is soma.float32
    assert m.num_parameters() == 15
    assert "Total params: 15" in m.summary([1, 4])
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_errors_name_the_layer_and_values():
    with pytest.raises(soma.Error, match="nn.Conv2d: unknown argument 'strid'"):
        nn.Conv2d(1, 4, 3, strid=2)
    with pytest.raises(soma.Error, match="nn.Linear: 'in_features' must be an integer"):
        nn.Linear("a", 2)
    with pytest.raises(soma.Error, match="nn.Linear: the argument 'out_features' is required"):
        nn.Linear(3)
    with pytest.raises(soma.Error, match=r"\[4, 5\]"):
        nn.Linear(3, 2)(soma.randn(4, 5))
    with pytest.raises(soma.Error, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(TypeError):
        nn.Sequential(3)
    with pytest.raises(soma.Error, match="nn.Linear: 'weight' belongs to the C\\+\\+ layer"):
        nn.Linear(2, 2).weight = nn.Parameter(soma.zeros(2, 2))

    class NoForward(nn.Module):
        pass

    with pytest.raises(soma.Error, match="forward"):
        NoForward()(soma.randn(1))


def test_user_defined_module_pickles():
    import pickle
    model = nn.Sequential(MyDenseLayer(3, 4), nn.Linear(4, 2))
    model[0].note = "kept"
    back = pickle.loads(pickle.dumps(model))
    x = soma.randn(2, 3)
    assert soma.equal(back(x), model(x)) and back[0].note == "kept"
    assert sorted(back.state_dict()) == sorted(model.state_dict())
    assert back[0].w.requires_grad and type(back[0]) is MyDenseLayer
    state = pickle.loads(pickle.dumps(model.state_dict()))
    assert all(soma.equal(state[k], v) for k, v in model.state_dict().items())
    with pytest.raises(TypeError, match="state_dict"):
        pickle.dumps(nn.Module())  # a bare soma Module has no arguments to rebuild it from


def test_python_errors_in_forward_surface_through_cpp_containers():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom at " + str(tuple(x.shape)))

    model = nn.Sequential(nn.Linear(64, 64), Boom())
    for rows in (1, 512):  # small: the GIL is kept; large: released around the C++ forward
        with pytest.raises(ValueError, match=f"boom at \\({rows}, 64\\)"):
            model(soma.randn(rows, 64))


def test_review_findings_crash_and_silent_cases():
    # touching self before Module.__init__: an AttributeError, as torch, not a crash
    class Early(nn.Module):
        def __init__(self):
            self.x = 1
            super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()

    class Peek(nn.Module):
        def __init__(self):
            getattr(self, "q", None)  # AttributeError inside: the default, no crash
            super().__init__()

    assert isinstance(Peek(), nn.Module)
    # a plain tensor over a registered parameter: TypeError, as torch
    layer = MyDenseLayer(2, 2)
    with pytest.raises(TypeError, match="Parameter or None expected"):
        layer.w = soma.ones(2, 2)
    assert [n for n, _ in layer.named_parameters()] == ["w", "b"]
    # forward overridden in a subclass of a C++ layer would be ignored by C++: refused
    with pytest.raises(TypeError, match="overriding forward in a subclass of soma.nn.Linear"):
        class MyLinear(nn.Linear):
            def forward(self, x):
                return x
    with pytest.raises(TypeError, match="overriding forward"):
        class MySeq(nn.Sequential):
            def forward(self, x):
                return x
    # momentum=None means a cumulative average in torch: refused, not read as 0.1
    with pytest.raises(soma.Error, match="momentum=None"):
        nn.BatchNorm1d(3, momentum=None)


class Tagged(nn.Linear):
    """A Python subclass of a C++ layer with its own constructor arguments."""

    def __init__(self, tag):
        super().__init__(3, 2)
        self.tag = tag


def test_subclassed_layers_copy_and_frozen_layers_pickle():
    import pickle

    t = Tagged("a")
    for back in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert type(back) is Tagged and back.tag == "a"
        assert soma.equal(back.weight, t.weight)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    for back in (copy.deepcopy(frozen), pickle.loads(pickle.dumps(frozen))):
        assert [p.requires_grad for p in back.parameters()] == [False, False]


def test_state_dict_in_registration_order(torch):
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(11)], nn.BatchNorm1d(2))
    twin = torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(11)],
                               torch.nn.BatchNorm1d(2))
    assert list(model.state_dict()) == list(twin.state_dict())


@pytest.mark.parametrize("rows", [1, 2, 4])
def test_linear_small_batch_inference_matches_torch(torch, np, rows):
    """Batch 1-4 under no_grad runs soma's packed small-batch kernel (an AVX-512 CPU; from the
    second call on an unchanged weight): torch's values, also after writes through numpy(),
    which soma cannot see (no pack while the array lives, a fresh one after)."""
    lin = nn.Linear(300, 37)
    twin_lin = torch.nn.Linear(300, 37)
    with torch.no_grad():  # copied by value: no soma memory is handed out here
        twin_lin.weight.copy_(torch.tensor(lin.weight.tolist()))
        twin_lin.bias.copy_(torch.tensor(lin.bias.tolist()))
    x = soma.randn(rows, 300)
    tx = torch.tensor(x.tolist())

    def check():
        for _ in range(2):
            with soma.no_grad():
                y = lin(x)
            np.testing.assert_allclose(np.array(y.tolist()), twin_lin(tx).detach().numpy(),
                                       rtol=1e-5, atol=1e-5)

    check()
    w = lin.weight.detach().numpy()
    w[3, :] += 0.5
    with torch.no_grad():
        twin_lin.weight[3, :] += 0.5
    check()
    w[4, :] -= 0.25
    with torch.no_grad():
        twin_lin.weight[4, :] -= 0.25
    del w
    check()
