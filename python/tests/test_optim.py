"""soma.optim against torch.optim: the same parameters fed the same gradient sequence end at
torch's values for every optimizer and option set; param groups; the LR schedulers' rates;
state dicts; errors."""
import pytest
import soma
import soma.optim as optim


def to_torch(torch, t):
    return torch.from_numpy(t.detach().numpy().copy())


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1,
              "amsgrad": True}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 1e-2}),
    ("RMSprop", {"lr": 1e-2, "alpha": 0.9, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("Adadelta", {"lr": 1.0, "rho": 0.8, "weight_decay": 0.01}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_optimizer_matches_torch(torch, np, name, kwargs):
    params = [soma.randn(4, 3).requires_grad_(), soma.randn(3).requires_grad_()]
    tparams = [to_torch(torch, p).requires_grad_() for p in params]
    opt = getattr(optim, name)(params, **kwargs)
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    for _ in range(6):
        grads = [soma.randn(*p.shape) for p in params]
        opt.zero_grad()
        topt.zero_grad()
        for p, tp, g in zip(params, tparams, grads):
            p.grad = g
            tp.grad = to_torch(torch, g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_param_groups_and_positional_lr(torch, np):
    a, b = soma.randn(3).requires_grad_(), soma.randn(2).requires_grad_()
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": b}], 0.1, momentum=0.9)
    ta, tb = to_torch(torch, a).requires_grad_(), to_torch(torch, b).requires_grad_()
    topt = torch.optim.SGD([{"params": [ta], "lr": 0.5}, {"params": tb}], 0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert opt.param_groups[1]["momentum"] == 0.9 and "nesterov" in opt.param_groups[0]
    for step in range(3):
        if step == 2:
            opt.param_groups[0]["lr"] = 0.01
            topt.param_groups[0]["lr"] = 0.01
        a.grad, b.grad = soma.ones(3), soma.ones(2) * 2
        ta.grad, tb.grad = torch.ones(3), torch.ones(2) * 2
        opt.step()
        topt.step()
    np.testing.assert_allclose(a.detach().numpy(), ta.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-6)
    assert opt.param_groups[0]["params"][0].shape == (3,)
    assert optim.Adam([a]).param_groups[0]["betas"] == (0.9, 0.999)


def test_step_with_closure_returns_the_loss():
    w = soma.tensor([2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with soma.no_grad():  # step runs the closure with grad enabled, as torch
        loss = opt.step(closure)
    assert loss.item() == 4.0 and w.item() == 1.0


def test_state_dict_round_trip_continues_identically():
    def run(split):
        soma.manual_seed(3)
        p = soma.randn(5).requires_grad_()
        opt = optim.Adam([p], lr=0.1)
        grads = [soma.randn(5) for _ in range(6)]
        for i, g in enumerate(grads):
            if i == split:
                state = opt.state_dict()
                opt = optim.Adam([p], lr=0.1)
                opt.load_state_dict(state)
            p.grad = g
            opt.step()
        return p

    assert soma.equal(run(None), run(3))


SCHEDULERS = [
    ("StepLR", {"step_size": 2, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [1, 4], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 4, "eta_min": 0.01}),
    ("LinearLR", {"start_factor": 0.25, "total_iters": 3}),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[n for n, _ in SCHEDULERS])
def test_scheduler_rates_match_torch(torch, name, kwargs):
    opt = optim.SGD([soma.zeros(1, requires_grad=True)], lr=0.1)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = getattr(optim.lr_scheduler, name)(opt, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(8):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)


def test_reduce_lr_on_plateau_matches_torch(torch):
    opt = optim.SGD([soma.zeros(1, requires_grad=True)], lr=0.1)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=1, cooldown=1)
    for metric in [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9]:
        s.step(metric)
        ts.step(metric)
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)


def test_errors():
    p = [soma.zeros(2, requires_grad=True)]
    with pytest.raises(soma.Error, match="SGD: unknown option 'momentm'.*momentum"):
        optim.SGD(p, lr=0.1, momentm=0.9)
    with pytest.raises(soma.Error, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(soma.Error, match="not one tensor"):
        optim.Adam(p[0])
    with pytest.raises(soma.Error, match="SGD: invalid learning rate: -1"):
        optim.SGD(p, lr=-1.0)
    with pytest.raises(soma.Error, match="only 'lr' can be set"):
        optim.SGD(p, lr=0.1).param_groups[0]["momentum"] = 0.5
    with pytest.raises(soma.Error, match="mode"):
        optim.lr_scheduler.ReduceLROnPlateau(optim.SGD(p, lr=0.1), mode="up")
    assert optim.SGD(p, lr=0.1, foreach=None, maximize=False).lr == 0.1
