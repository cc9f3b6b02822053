#!/usr/bin/python3
"""Lecture 1 (Introduction to Deep Learning) in soma, from Python.

Every PyTorch snippet of the course notes (../shared/lecture-1-intro-to-deep-learning.md),
`torch.` -> `soma.`, line for line where possible (TensorFlow's GradientTape becomes
soma.autograd.grad), and around them the experiments of the C++ examples: where a section has a
C++ counterpart (examples/perceptron.cpp, custom_dense_layer.cpp, mlp.cpp, gradient_tape.cpp,
optimizers.cpp, minibatch.cpp, overfitting.cpp) this script runs the SAME experiment -- the same
data drawn from soma's generator in the same order, the same initial weights, the same updates --
and prints the same lines. examples/python/compare_lecture.sh checks that they agree digit for
digit.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/lecture1.py [--small]
"""
import math
import sys
import time

import soma
import soma.nn as nn
import soma.nn.functional as F

SMALL = "--small" in sys.argv[1:]
failures = []


def check(ok, message):
    if not ok:
        print("FAIL: " + message)
        failures.append(message)


def section(title):
    print("\n== " + title)


# ---- 2. The perceptron: non-linear activation functions ---------------------------------------
section("activations")
x = soma.linspace(-3.0, 3.0, 7)
print("x          ", x)
print("sigmoid(x) ", soma.sigmoid(x))   # torch.sigmoid(x)
print("tanh(x)    ", soma.tanh(x))      # torch.tanh(x)
print("relu(x)    ", soma.relu(x))      # torch.relu(x)
check(soma.allclose(soma.sigmoid(x), 1 / (1 + soma.exp(-x))), "sigmoid is 1 / (1 + e^-x)")

# ---- 2. The perceptron: y = g(w0 + X^T W), as examples/perceptron.cpp ---------------------------
section("perceptron")
kA, kB, kC, kMargin = 1.5, -1.0, 0.25, 0.1


def make_separable(candidates):
    u = (soma.rand(candidates, 2) * 2.0 - 1.0).tolist()
    norm = math.sqrt(kA * kA + kB * kB)
    xs, ys = [], []
    for x1, x2 in u:
        signed_distance = (kA * x1 + kB * x2 + kC) / norm
        if abs(signed_distance) < kMargin:
            continue
        xs.append([x1, x2])
        ys.append([1.0 if signed_distance > 0 else 0.0])
    return soma.tensor(xs, dtype=soma.float32), soma.tensor(ys, dtype=soma.float32)


steps, lr = (500 if SMALL else 2000), 1.0
soma.manual_seed(0)
X, y = make_separable(300)
n = X.size(0)
W = soma.zeros(2, 1).requires_grad_(True)   # weights [w1, w2]
w0 = soma.zeros(1).requires_grad_(True)     # bias


def perceptron(X):
    return soma.sigmoid(w0 + soma.matmul(X, W))


def perceptron_accuracy():
    with soma.no_grad():
        p = perceptron(X)
    return ((p > 0.5) == (y > 0.5)).sum().item() / n


print("perceptron: %d points, y = sigmoid(w0 + X^T W), %d steps of GD (lr %.1f)" % (n, steps, lr))
for step in range(steps):
    loss = F.binary_cross_entropy(perceptron(X), y)
    loss.backward()
    last_loss = loss.item()
    if step == 0:
        first_loss = last_loss
    if step % (steps // 5) == 0 or step == steps - 1:
        print("step %5d  loss %.4f  accuracy %.2f%%" % (step, last_loss, 100.0 * perceptron_accuracy()))
    with soma.no_grad():                    # W <- W - lr dJ/dW, w0 <- w0 - lr dJ/dw0
        for p in (W, w0):
            p.sub_(p.grad * lr)
            p.grad.zero_()
w = W.tolist()
print("learned weights W = [%.4f, %.4f], bias w0 = %.4f" % (w[0][0], w[1][0], w0.item()))
if w[1][0] != 0.0:   # w0 + w1 x1 + w2 x2 = 0  <=>  x2 = -(w0 + w1 x1) / w2
    print("decision boundary: x2 = %.4f x1 + %.4f   (true line: x2 = %.4f x1 + %.4f)"
          % (-w[0][0] / w[1][0], -w0.item() / w[1][0], -kA / kB, -kC / kB))
acc = perceptron_accuracy()
print("training accuracy %.2f%%, loss %.4f -> %.4f" % (100.0 * acc, first_loss, last_loss))
check(acc == 1.0, "the perceptron must separate linearly separable data")


# ---- 3. Dense layer from scratch, as examples/custom_dense_layer.cpp ----------------------------
section("custom_dense_layer")


class MyDenseLayer(soma.nn.Module):
    def __init__(self, input_dims, output_dims):
        super().__init__()
        self.w = soma.nn.Parameter(soma.randn(input_dims, output_dims))
        self.b = soma.nn.Parameter(soma.randn(1, output_dims))

    def forward(self, inputs):
        z = soma.matmul(inputs, self.w) + self.b
        return soma.relu(z)


def make_circles(per_class):
    r = soma.cat([soma.rand(per_class) * 0.5, soma.rand(per_class) * 0.3 + 0.7])
    a = soma.rand(2 * per_class) * 6.2831853
    return (soma.stack([r * soma.cos(a), r * soma.sin(a)], 1),
            soma.tensor([0] * per_class + [1] * per_class))


epochs, batch, lr = (20 if SMALL else 60), 32, 0.1
soma.manual_seed(0)
X, y = make_circles(250)
n = X.size(0)
# Built-in: nn.Linear(in_features, out_features)
model = nn.Sequential(MyDenseLayer(2, 32), nn.Linear(32, 2))
print(model)
keys = sorted(model.state_dict().keys())
print("state_dict keys:", keys)
check(keys == ["0.b", "0.w", "1.bias", "1.weight"], "state_dict keys")


def evaluate_full(model, X, y):
    with soma.no_grad():
        logits = model(X)
        loss = F.cross_entropy(logits, y).item()
        return loss, (soma.argmax(logits, 1) == y).sum().item() / y.size(0)


first_loss, _ = evaluate_full(model, X, y)
print("training: %d points, batches of %d, %d epochs of SGD (lr %.2f)" % (n, batch, epochs, lr))
loader = soma.data.DataLoader(soma.data.TensorDataset(X, y), batch_size=batch, shuffle=True, seed=1)
for epoch in range(epochs):
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        model.zero_grad()
        loss.backward()
        with soma.no_grad():                # the lecture's update: p <- p - lr dJ/dp
            for p in model.parameters():
                p.sub_(p.grad * lr)
    if epoch % (epochs // 5) == 0 or epoch == epochs - 1:
        last_loss, acc = evaluate_full(model, X, y)
        print("epoch %3d  loss %.4f  accuracy %.2f%%" % (epoch, last_loss, 100.0 * acc))
last_loss, acc = evaluate_full(model, X, y)
print("training accuracy %.2f%%, loss %.4f -> %.4f" % (100.0 * acc, first_loss, last_loss))
check(last_loss < 0.5 * first_loss and acc > (0.95 if SMALL else 0.97), "dense layer fit")

# ---- 4-5. Single hidden layer, deep networks, as examples/mlp.cpp -------------------------------
section("mlp")


def make_spiral(points_per_class=300, classes=3):
    r = soma.arange(points_per_class, dtype=soma.float32) / float(points_per_class - 1)
    xs = []
    for j in range(classes):
        angle = r * 4.0 + 4.0 * float(j) + soma.randn(points_per_class) * 0.2
        xs.append(soma.stack([r * soma.sin(angle), r * soma.cos(angle)], 1))
    return soma.cat(xs), soma.tensor(sum([[j] * points_per_class for j in range(classes)], []))


def train_full_batch(model, X, y, steps, lr):
    start = time.perf_counter()
    for step in range(steps):
        loss = F.cross_entropy(model(X), y)
        model.zero_grad()
        loss.backward()
        last = loss.item()
        if step == 0:
            first = last
        with soma.no_grad():
            for p in model.parameters():
                p.sub_(p.grad * lr)
    seconds = time.perf_counter() - start
    with soma.no_grad():
        acc = (soma.argmax(model(X), 1) == y).sum().item() / y.size(0)
    return first, last, acc, seconds


steps, lr = (300 if SMALL else 2000), 0.5
soma.manual_seed(0)
X, y = make_spiral()
input_size, hidden_size, output_size = 2, 32, 3
linear = nn.Sequential(nn.Linear(input_size, output_size))
shallow = nn.Sequential(                    # the lecture's single hidden layer network
    nn.Linear(input_size, hidden_size),
    nn.ReLU(),
    nn.Linear(hidden_size, output_size)
)
deep = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                     nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
print("mlp: %d spiral points, 3 classes, %d steps of full-batch GD (lr %.2f)" % (X.size(0), steps, lr))
print("%-18s %8s %10s %10s %9s %7s" % ("model", "params", "loss[0]", "loss[end]", "accuracy", "time"))
results = []
for name, m in (("linear", linear), ("one hidden layer", shallow), ("deep (3 hidden)", deep)):
    first, last, acc, seconds = train_full_batch(m, X, y, steps, lr)
    results.append(acc)
    print("%-18s %8d %10.4f %10.4f %8.2f%% %6.2fs" % (name, m.num_parameters(), first, last,
                                                       100.0 * acc, seconds))
check(results[1] > results[0] + 0.25 and results[0] < 0.70 and
      results[2] > (0.90 if SMALL else 0.95), "hidden layers fit the spiral")

# ---- 6. Loss functions -------------------------------------------------------------------------
section("losses")
predicted = soma.tensor([[2.0, 0.5, -1.0], [0.1, 1.5, 0.2]])   # logits
target = soma.tensor([0, 1])
print("cross_entropy", soma.nn.functional.cross_entropy(predicted, target))
pred_reg, y_reg = soma.tensor([2.5, 0.0, 2.1]), soma.tensor([3.0, -0.5, 2.0])
# torch.nn.MSELoss is a module: built first, then called on (predicted, y).
print("MSELoss      ", soma.nn.MSELoss()(pred_reg, y_reg))
check(abs(soma.nn.MSELoss()(pred_reg, y_reg).item() - 0.17) < 1e-6, "MSE of the example")

# ---- 7. The training loop (optimizer.step / zero_grad) and the GradientTape version ----------
section("training loop")
soma.manual_seed(0)
x_train = soma.randn(64, 3)
y_train = x_train @ soma.tensor([[1.0], [-2.0], [0.5]]) + 0.3
model = nn.Linear(3, 1)
criterion = nn.MSELoss()
epochs = 500
optimizer = soma.optim.SGD(model.parameters(), lr=0.01)

for epoch in range(epochs):
    y_pred = model(x_train)
    loss = criterion(y_pred, y_train)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
print("SGD loop: final MSE %.2e" % loss.item())
check(loss.item() < 1e-3, "the SGD loop fits a linear target")

# TensorFlow's GradientTape loop, as examples/gradient_tape.cpp: soma.autograd.grad returns the
# gradients as a list (tape.gradient), the optimizer applies them (apply_gradients). The weights
# must equal those of the loss.backward() loop bit for bit.
section("gradient_tape")
soma.manual_seed(5)
angle = soma.rand(300) * 6.2831853
r = soma.tensor([float(i % 3 + 1) for i in range(300)], dtype=soma.float32) + soma.randn(300) * 0.15
X = soma.stack([r * soma.cos(angle), r * soma.sin(angle)], 1)
Y = soma.tensor([i % 3 for i in range(300)])


def train_tape(tape, epochs=30, lr=0.3):
    soma.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 3))
    loader = soma.data.DataLoader(soma.data.TensorDataset(X, Y), batch_size=30, shuffle=True,
                                  seed=1)
    optimizer = soma.optim.SGD(model.parameters(), lr=lr)
    trainable_variables = list(model.parameters())
    for epoch in range(epochs):
        for x_batch, y_batch in loader:
            loss = F.cross_entropy(model(x_batch), y_batch)
            if tape:
                grads = soma.autograd.grad(loss, trainable_variables)   # tape.gradient(...)
                for p, g in zip(trainable_variables, grads):           # apply_gradients(zip(...))
                    p.grad = g
                optimizer.step()
            else:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return model


tape_model, backward_model = train_tape(True), train_tape(False)
same = all(soma.equal(a, b) for a, b in zip(tape_model.parameters(), backward_model.parameters()))
with soma.no_grad():
    acc = (soma.argmax(tape_model(X), 1) == Y).double().mean().item()
print("GradientTape loop: %d epochs, training accuracy %.3f; weights equal to the backward() "
      "loop's: %s" % (30, acc, "yes" if same else "no"))
check(same and acc >= 0.9, "the GradientTape loop equals the backward() loop and fits")

# ---- 9. Optimizers, as examples/optimizers.cpp ----------------------------------------------
section("optimizers")
epochs = 60 if SMALL else 300
soma.manual_seed(0)                         # the spiral's noise, then the initial weights
X, y = make_spiral()


def make_model():
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 3))


init = {k: v.detach().clone() for k, v in make_model().state_dict().items()}
print("optimizers: %d spiral points, MLP 2-64-3, %d full-batch epochs" % (X.size(0), epochs))
for name, make in (("SGD", lambda p: soma.optim.SGD(p, lr=0.5)),
                   ("SGD+momentum", lambda p: soma.optim.SGD(p, lr=0.1, momentum=0.9)),
                   ("Adam", lambda p: soma.optim.Adam(p, lr=1e-2)),
                   ("RMSprop", lambda p: soma.optim.RMSprop(p, lr=1e-2)),
                   ("Adagrad", lambda p: soma.optim.Adagrad(p, lr=0.1)),
                   ("Adadelta", lambda p: soma.optim.Adadelta(p, lr=1.0))):
    model = make_model()
    model.load_state_dict(init)             # the same initial weights for every optimizer
    optimizer = make(model.parameters())
    for epoch in range(epochs):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        if epoch == 0:
            first = loss.item()
        loss.backward()
        optimizer.step()
    with soma.no_grad():
        logits = model(X)
        last = F.cross_entropy(logits, y).item()
        acc = (soma.argmax(logits, 1) == y).sum().item() / y.size(0)
    lowered = math.isfinite(last) and last < first
    print("  %-13s loss %.4f -> %.4f  accuracy %5.1f%%%s" % (
        name, first, last, 100.0 * acc, "" if lowered else "  FAIL: the loss did not decrease"))
    check(lowered, name + " lowers the loss")

# ---- 10. Mini-batches (stochastic gradient descent), as examples/minibatch.cpp ---------------
section("minibatch")
epochs = 8 if SMALL else 30
soma.manual_seed(5)
centres = soma.tensor([[math.cos(2.1 * k) * 1.5, math.sin(2.1 * k) * 1.5] for k in range(3)],
                      dtype=soma.float32)
ks = [i % 3 for i in range(600)]
X = centres[soma.tensor(ks)] + soma.randn(600, 2) * 0.6
Y = soma.tensor(ks)
finals = []
for name, batch, lr in (("full batch (GD)", 600, 0.5), ("batch 32", 32, 0.5),
                        ("batch 1 (SGD)", 1, 0.05)):
    soma.manual_seed(0)                     # the same initial weights for every run
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 3))
    optimizer = soma.optim.SGD(model.parameters(), lr=lr)
    loader = soma.data.DataLoader(soma.data.TensorDataset(X, Y), batch_size=batch, shuffle=True,
                                  seed=1)
    with soma.no_grad():
        first = F.cross_entropy(model(X), Y).item()
    start = time.perf_counter()
    for epoch in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    ms = (time.perf_counter() - start) * 1e3
    with soma.no_grad():
        last = F.cross_entropy(model(X), Y).item()
    finals.append(last)
    print("%-16s lr %-5g %3d steps/epoch: loss %.4f -> %.4f after %d epochs, %.1f ms"
          % (name, lr, len(loader), first, last, epochs, ms))
check(finals[1] < finals[0] and finals[2] < finals[0], "mini-batches end below full-batch GD")

# ---- 11. Overfitting: dropout and early stopping, as examples/overfitting.cpp -----------------
section("overfitting")


def make_data(n, seed):
    # The label test in float32 arithmetic, as C++'s float sum r[0] + r[1] - r[2].
    soma.manual_seed(seed)
    x = soma.randn(n, 20)
    flip = (soma.rand(n) < 0.2).long()
    label = ((x[:, 0] + x[:, 1] - x[:, 2]) > 0).long()
    label = soma.where(flip == 1, 1 - label, label)
    return soma.data.TensorDataset(x, label)


epochs = 120 if SMALL else 200
train_loader = soma.data.DataLoader(make_data(100, 1), batch_size=25, shuffle=True, seed=2)
val_loader = soma.data.DataLoader(make_data(1000, 2), batch_size=1000)
loss_fn = nn.CrossEntropyLoss()
final_vals = []
for name, p_drop, early in (("no regularisation", 0.0, False), ("dropout 0.8", 0.8, False),
                            ("early stopping", 0.0, True)):
    soma.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Dropout(p_drop),
                          nn.Linear(256, 256), nn.ReLU(), nn.Dropout(p_drop),
                          nn.Linear(256, 2))
    optimizer = soma.optim.Adam(model.parameters(), lr=1e-3)
    stop = soma.train.EarlyStopping(monitor="val_loss", patience=10) if early else None
    history = soma.fit(model, optimizer, loss_fn, train_loader, epochs=epochs,
                       validation=val_loader, callbacks=[stop] if stop else [], verbose=False)
    final_val = soma.evaluate(model, val_loader, loss_fn).loss   # restored weights, if any
    final_vals.append(final_val)
    note = ("; stopped after epoch %d, best weights of epoch %d"
            % (stop.stopped_epoch + 1, stop.best_epoch + 1)) if stop else ""
    print("%-18s %3d epochs: train loss %.4f, validation loss %.4f (best %.4f)%s"
          % (name, len(history), history["loss"][-1], final_val, min(history["val_loss"]), note))
check(final_vals[1] < final_vals[0] and final_vals[2] < final_vals[0],
      "dropout and early stopping end with a lower validation loss")

print("\nlecture1: %s" % ("all checks passed" if not failures else "%d FAILED" % len(failures)))
sys.exit(1 if failures else 0)
