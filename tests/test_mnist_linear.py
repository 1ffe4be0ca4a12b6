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
