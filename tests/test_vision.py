"""Tests of pretrain_lessons.vision: adapters, EfficientNet-Lite0 and its weights, features, budgets, ImageFolder."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pretrain_lessons import paths, vision


def weights_present() -> bool:
    return (paths.data_dir() / "models" / "efficientnet-lite0" / "efficientnet-lite0.pth").exists()


def test_resnet18_for_one_channel_gives_ten_logits():
    model = vision.resnet18_for(in_channels=1, num_classes=10).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_freeze_all_but_head_leaves_only_the_head_trainable():
    model = vision.freeze_all_but(vision.resnet18_for(1, 10), ("fc",))
    assert vision.count_parameters(model, trainable_only=True) == 512 * 10 + 10
    assert vision.count_parameters(model) > 11_000_000
    assert not model.conv1.weight.requires_grad and model.fc.bias.requires_grad


def test_replace_head_uses_the_features_that_reach_it():
    from torchvision import models

    model = vision.replace_head(models.resnet18(weights=None), 3).eval()
    assert model.fc.in_features == 512 and model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_discriminative_groups_cover_each_parameter_once():
    model = vision.resnet18_for(1, 10)
    groups = vision.discriminative_param_groups(model, head_lr=1e-3, backbone_lr=1e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 1e-3 and len(by_name["head"]["params"]) == 2
    torch.optim.AdamW(groups)  # accepted as is


def test_feature_extractor_shares_weights_and_reproduces_the_logits():
    torch.manual_seed(0)
    model = vision.resnet18_for(1, 10).eval()
    body = vision.feature_extractor(model)
    x = torch.randn(3, 1, 28, 28)
    feats = body(x)
    assert feats.shape == (3, 512)
    assert torch.allclose(model.fc(feats), model(x), atol=1e-5)
    assert body[0] is model.conv1


def test_extract_features_restores_training_mode_and_returns_labels():
    model = vision.resnet18_for(1, 10)
    body = vision.feature_extractor(model).train()
    loader = [(torch.randn(4, 1, 28, 28), torch.arange(4)), (torch.randn(2, 1, 28, 28), torch.arange(2))]
    feats, labels = vision.extract_features(body, loader)
    assert feats.shape == (6, 512) and labels.tolist() == [0, 1, 2, 3, 0, 1]
    assert body.training


def test_balanced_subset_is_balanced_nested_and_fixed():
    labels = torch.arange(10).repeat(30)[torch.randperm(300, generator=torch.Generator().manual_seed(1))]
    small, large = vision.balanced_subset(labels, 5), vision.balanced_subset(labels, 20)
    assert torch.bincount(labels[small]).tolist() == [5] * 10
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.equal(small, vision.balanced_subset(labels, 5))
    assert not torch.equal(small, vision.balanced_subset(labels, 5, seed=1))
    with pytest.raises(ValueError):
        vision.balanced_subset(labels, 31)


def test_linear_probe_learns_separable_features():
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 5
    labels = torch.arange(3).repeat(20)
    feats = centres[labels] + torch.randn(60, 16) + 100  # a large offset: the probe standardises
    probe = vision.train_linear_probe(feats, labels, num_classes=3, steps=100)
    assert (probe(feats).argmax(1) == labels).float().mean() == 1.0


def test_same_padding_matches_tensorflow_for_stride_two():
    torch.manual_seed(0)
    conv = vision.SameConv2d(2, 4, 3, 2, bias=False)
    x = torch.randn(1, 2, 8, 8)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)  # TF SAME: the extra pixel goes bottom/right
    assert torch.allclose(conv(x), expected)
    assert conv(torch.randn(1, 2, 7, 7)).shape[-2:] == (4, 4)


def test_efficientnet_lite0_architecture():
    model = vision.EfficientNetLite0().eval()
    assert len(model._blocks) == 16
    assert vision.count_parameters(model) == 4_652_008
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    assert vision.feature_extractor(model)(torch.randn(2, 3, 64, 64)).shape == (2, 1280)


@pytest.mark.skipif(not weights_present(), reason="EfficientNet-Lite0 weights not provisioned")
def test_efficientnet_lite0_weights_load_and_recognise_a_photo():
    from matplotlib import cbook
    from PIL import Image
    from torchvision import transforms

    model = vision.efficientnet_lite0()
    names = vision.imagenet_categories()
    image = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    prep = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                               transforms.Normalize(vision.LITE_MEAN, vision.LITE_STD)])
    with torch.no_grad():
        top3 = model(prep(image)[None]).topk(3).indices[0].tolist()
    assert "military uniform" in [names[i] for i in top3]  # the classic label of this photo of Grace Hopper


def test_write_image_folder_round_trips_through_imagefolder(tmp_path):
    from torchvision import datasets

    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    root = vision.write_image_folder(images, labels, ["T-shirt/top", "Trouser", "Bag"], tmp_path / "set")
    data = datasets.ImageFolder(root)
    assert data.classes == ["0_T-shirt_top", "1_Trouser", "2_Bag"]
    assert sorted(data.targets) == sorted(labels.tolist())
    image, label = data[0]
    original = images[int(data.samples[0][0].rsplit("/", 1)[1][:5])]
    assert np.array_equal(np.asarray(image.convert("L")), original.numpy())
    vision.write_image_folder(images[:2], labels[:2], ["a", "b", "c"], root)  # replaces the old content
    assert len(datasets.ImageFolder(root, allow_empty=True)) == 2


def test_filter_mosaic_tiles_and_scales_each_filter():
    weight = torch.randn(10, 1, 3, 3)
    mosaic = vision.filter_mosaic(weight, ncols=4)
    assert mosaic.shape == (3 * 4 - 1, 4 * 4 - 1)
    values = mosaic[~torch.isnan(mosaic)]
    assert values.min() == 0 and values.max() == 1


def test_mnist_pretrained_resnet18_loads_a_saved_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path))
    monkeypatch.setenv("PRETRAIN_LESSONS_SCALE", "smoke")
    torch.manual_seed(0)
    saved = vision.resnet18_for(1, 10)
    folder = paths.checkpoint_dir(vision.MNIST_CHECKPOINT)
    torch.save({"model": saved.state_dict(), "test_accuracy": 0.5, "seconds": 1.0}, folder / "model.pt")
    model = vision.mnist_pretrained_resnet18(progress=False)
    assert model.mnist_test_accuracy == 0.5 and not model.training
    assert torch.equal(model.conv1.weight, saved.conv1.weight)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 10


def test_class_folder_names_sort_in_label_order():
    names = [vision.class_folder_name(i, f"c/{i}", 12) for i in range(12)]
    assert names[0] == "00_c_0" and sorted(names) == names
    assert vision.class_folder_name(3, "Ankle boot") == "3_Ankle_boot"


def _fake_results():
    rng = np.random.default_rng(0)
    return {method: {k: {"accuracy": acc + k / 1000, "sample_predictions": rng.integers(0, 10, 8)} for k in (2, 10, 50)}
            for method, acc in (("linear probe", 0.4), ("from scratch", 0.3))}


def test_budget_curves_and_prediction_grid_draw():
    import matplotlib.pyplot as plt

    from pretrain_lessons.widgets.lesson06 import budget_curves, prediction_grid

    results = _fake_results()
    fig = budget_curves(results, highlight=("from scratch", 10))
    ax = fig.axes[0]
    assert len(ax.get_legend().get_texts()) == 3                        # two methods and the chance line
    assert ax.get_xscale() == "log"
    plt.close(fig)
    images, truth = np.zeros((8, 28, 28)), np.arange(8)
    fig = prediction_grid(images, {m: r[2]["sample_predictions"] for m, r in results.items()}, truth, [str(i) for i in range(10)])
    assert len(fig.axes) == 16
    plt.close(fig)


def test_transfer_explorer_renders_and_follows_the_controls():
    from pretrain_lessons.widgets.lesson06 import transfer_explorer

    widget = transfer_explorer(_fake_results(), np.zeros((8, 28, 28)), np.arange(8), [str(i) for i in range(10)])
    method, budget = widget.children[0].children
    assert budget.options == (2, 10, 50)
    assert method.options == ("linear probe", "from scratch")
    budget.value = 50
    method.value = "from scratch"                                          # redraws (must not raise), trains nothing


@pytest.mark.skipif(not weights_present(), reason="EfficientNet-Lite0 weights not provisioned")
def test_efficientnet_lite0_matches_the_reference_implementation_when_installed():
    reference = pytest.importorskip("efficientnet_lite_pytorch")  # optional: pip install efficientnet-lite-pytorch
    from pretrain_lessons.data.loaders import efficientnet_lite0_weights

    ours = vision.efficientnet_lite0()
    theirs = reference.EfficientNet.from_pretrained("efficientnet-lite0",
                                                    weights_path=str(efficientnet_lite0_weights())).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4)
