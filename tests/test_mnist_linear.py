"""Lesson 02 helpers: the flat tensors equal seed 000's transform, timing and epoch metrics work, short runs learn."""
import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from pretrain_lessons.data.loaders import TensorLoader  # noqa: E402
from pretrain_lessons.mnist_linear import (EpochMetrics, SeedModel, epoch_curves, epoch_table, flat_mnist,  # noqa: E402
                                           normalize, time_training, train_briefly)
from pretrain_lessons.train import fit  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return flat_mnist()


def test_flat_tensors_equal_the_seeds_torchvision_transform(data):
    from torchvision import datasets, transforms

    from pretrain_lessons.paths import data_dir

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    test = datasets.MNIST(root=str(data_dir()), train=False, download=True, transform=transform)
    for i in (0, 1, 9999):
        image, label = test[i]
        torch.testing.assert_close(data["x_test"][i], image.view(-1))
        assert data["y_test"][i].item() == label


def test_split_sizes_and_range(data):
    assert data["x_train"].shape == (55_000, 784) and data["x_val"].shape == (5_000, 784)
    assert data["x_test"].shape == (10_000, 784)
    assert data["x_train"].min() == -1 and data["x_train"].max() == 1
    assert normalize(torch.full((1, 28, 28), 255, dtype=torch.uint8)).eq(1).all()


def test_seed_model_flattens_images():
    assert SeedModel()(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_time_training_respects_max_steps(data):
    model = SeedModel()
    seconds, steps = time_training(model, TensorLoader(data["x_train"], data["y_train"], batch_size=64),
                                   torch.optim.SGD(model.parameters(), lr=0.01), max_steps=7)
    assert steps == 7 and seconds > 0


def test_epoch_metrics_and_curves(data):
    torch.manual_seed(0)
    x, y = data["x_train"][:2000], data["y_train"][:2000]
    loader = TensorLoader(x, y, batch_size=200, shuffle=True)
    model = nn.Linear(784, 10)
    metrics = EpochMetrics(x, y, steps_per_epoch=len(loader))
    history = fit(model, loader, val_loader=TensorLoader(data["x_val"][:500], data["y_val"][:500], batch_size=500),
                  epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), callbacks=(metrics,), progress=False)
    table = epoch_table(history, metrics.rows)
    assert list(table.index) == [1, 2, 3]
    assert table["train_loss"].is_monotonic_decreasing and table["val_loss"].is_monotonic_decreasing
    assert table["train_accuracy"].iloc[-1] > 0.5 and table["val_accuracy"].iloc[-1] > 0.5   # 30 steps: far from done
    assert epoch_curves(table) is not None


def test_train_briefly_learns_and_is_repeatable(data):
    h1, acc1 = train_briefly(data, lr=0.05, batch_size=64, steps=150)
    h2, acc2 = train_briefly(data, lr=0.05, batch_size=64, steps=150)
    assert len(h1.steps) == 150 and acc1 == acc2
    assert acc1 > 0.7   # 150 steps of plain SGD: well above chance (0.1), well below the ~92 % ceiling


def test_hand_gradient_equals_autograd(data):
    from pretrain_lessons.mnist_linear import softmax_regression_grads

    x, y = data["x_train"][:50], data["y_train"][:50]
    w = (0.01 * torch.randn(784, 10, generator=torch.Generator().manual_seed(1))).requires_grad_()
    b = torch.zeros(10, requires_grad=True)
    nn.functional.cross_entropy(x @ w + b, y).backward()
    gw, gb = softmax_regression_grads(x, y, w.detach(), b.detach())
    torch.testing.assert_close(gw, w.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(gb, b.grad, atol=1e-6, rtol=1e-5)


def test_train_many_equals_sgd_with_autograd_for_each_recipe_and_seed(data):
    from pretrain_lessons.mnist_linear import Recipe, sgd_with_autograd, train_many

    x, y = data["x_train"][:3200], data["y_train"][:3200]
    recipes = [Recipe(0.01), Recipe(0.01, momentum=0.9, schedule="cosine")]
    w, b, runs = train_many(x, y, recipes, seeds=[3, 4], epochs=2)
    assert [(str(r), s) for r, s in runs] == [(str(r), s) for r in recipes for s in (3, 4)]
    for (recipe, seed), wi, bi in zip(runs, w, b):
        reference = sgd_with_autograd(x, y, recipe, seed, epochs=2)
        torch.testing.assert_close(wi, reference.weight.detach().T, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bi[0], reference.bias.detach(), atol=1e-5, rtol=1e-4)


def test_train_many_pairs_recipes_by_seed_and_learns(data):
    from pretrain_lessons.mnist_linear import Recipe, accuracies, linear_init, train_many

    x, y = data["x_train"][:3200], data["y_train"][:3200]
    w, b, runs = train_many(x, y, [Recipe(0.0), Recipe(0.05)], seeds=[0, 1], epochs=1)
    w0, _ = linear_init(0)
    torch.testing.assert_close(w[0], w0)          # lr 0: the seed's starting weights, untouched
    assert not torch.equal(w[0], w[1])            # two seeds, two starts
    acc = accuracies(w, b, data["x_val"], data["y_val"])
    assert acc[2] > 0.75 and acc[0] < 0.3         # 50 steps at lr 0.05 learn; lr 0 stays near chance
