"""Tests of pretrain_lessons.vision (adapters, tasks, source network, EfficientNet-Lite0, cached features, probes,
fine-tuning, ImageFolder) and of the lesson-06 widget."""
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


def test_class_folder_names_sort_in_label_order():
    names = [vision.class_folder_name(i, f"c/{i}", 12) for i in range(12)]
    assert names[0] == "00_c_0" and sorted(names) == names
    assert vision.class_folder_name(3, "Ankle boot") == "3_Ankle_boot"


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


def test_replace_head_and_groups_find_the_efficientnet_head():
    model = vision.EfficientNetLite0()
    assert vision.head_name(model) == "_fc" and vision.head_name(vision.resnet18_for(1, 10)) == "fc"
    vision.replace_head(model, 4)
    assert model._fc.out_features == 4 and model._fc.in_features == 1280
    groups = {g["name"]: g for g in vision.discriminative_param_groups(model, head_lr=1e-2, backbone_lr=1e-3)}
    assert len(groups["head"]["params"]) == 2 and groups["backbone"]["lr"] == 1e-3
    with pytest.raises(ValueError):
        vision.head_name(nn.Sequential(nn.Conv2d(1, 1, 1)))


def _fake_data(n_train=300, n_test=100):
    g = torch.Generator().manual_seed(0)
    return {"train_images": torch.randint(0, 256, (n_train, 28, 28), dtype=torch.uint8, generator=g),
            "train_labels": torch.arange(n_train) % 10,
            "test_images": torch.randint(0, 256, (n_test, 28, 28), dtype=torch.uint8, generator=g),
            "test_labels": torch.arange(n_test) % 10}


def test_make_task_keeps_classes_renumbers_and_keeps_splits_apart():
    data = _fake_data()
    task = vision.make_task("t", data, [5, 7, 9], ["5", "7", "9"], pool_per_class=12, val_per_class=5, test_per_class=4)
    assert task.num_classes == 3
    assert torch.bincount(task.pool_labels).tolist() == [12] * 3 and torch.bincount(task.val_labels).tolist() == [5] * 3
    assert torch.bincount(task.test_labels).tolist() == [4] * 3
    pool = {bytes(im.numpy()) for im in task.pool_images}
    assert not pool & {bytes(im.numpy()) for im in task.val_images}          # validation images never in the pool
    assert task.fingerprint() == vision.make_task("t", data, [5, 7, 9], ["5", "7", "9"], 12, 5, 4).fingerprint()
    assert task.fingerprint() != vision.make_task("t", data, [5, 7, 9], ["5", "7", "9"], 12, 5, 4, seed=1).fingerprint()
    with pytest.raises(ValueError):
        vision.make_task("t", data, [5], ["5"], pool_per_class=40, val_per_class=5, test_per_class=4)


def test_lite_input_matches_the_torchvision_pipeline():
    from PIL import Image
    from torchvision import transforms

    images = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = vision.lite_input(images, 48)
    assert ours.shape == (2, 3, 48, 48) and torch.equal(ours[:, 0], ours[:, 2])
    pipeline = transforms.Compose([transforms.Resize((48, 48)), transforms.Grayscale(num_output_channels=3),
                                   transforms.ToTensor(), transforms.Normalize(vision.LITE_MEAN, vision.LITE_STD)])
    theirs = pipeline(Image.fromarray(images[0].numpy()))
    assert (ours[0] - theirs).abs().mean() < 0.02                         # PIL's resampling rounds differently
    assert vision.lite_input(images, 28).shape == (2, 3, 28, 28)


def test_shift_augment_moves_batches_and_keeps_labels():
    from pretrain_lessons.data.loaders import TensorLoader

    x, y = torch.arange(4 * 28 * 28, dtype=torch.float).reshape(4, 1, 28, 28), torch.arange(4)
    loader = vision.ShiftAugment(TensorLoader(x, y, batch_size=2), pixels=2, seed=0)
    assert len(loader) == 2 and torch.equal(loader.labels, y)
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1], [2, 3]]
    assert batches[0][0].shape == (2, 1, 28, 28) and torch.equal(batches[0][0].sum(), x[:2].sum())   # a roll


def test_source_resnet18_loads_its_checkpoint_and_retrains_a_stale_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path))
    monkeypatch.setenv("PRETRAIN_LESSONS_SCALE", "smoke")
    recipe = vision.DIGITS_SOURCE
    torch.manual_seed(0)
    saved = vision.resnet18_for(1, 5)
    folder = paths.checkpoint_dir(recipe.name)
    torch.save({"model": saved.state_dict(), "test_accuracy": 0.5, "seconds": 1.0,
                "fingerprint": recipe.fingerprint()}, folder / "model.pt")
    model = vision.source_resnet18(recipe, progress=False)
    assert model.source_test_accuracy == 0.5 and not model.trained_now and not model.training
    assert torch.equal(model.conv1.weight, saved.conv1.weight) and model.fc.out_features == 5
    calls = []
    monkeypatch.setattr("pretrain_lessons.vision._source_data", lambda r: calls.append(r) or 1 / 0)
    torch.save({"model": saved.state_dict(), "test_accuracy": 0.5, "seconds": 1.0, "fingerprint": "old"},
               folder / "model.pt")
    with pytest.raises(ZeroDivisionError):                                # stale: it starts training again
        vision.source_resnet18(recipe, progress=False)
    assert calls == [recipe]


def test_recipe_fingerprint_follows_settings_and_scale(monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_SCALE", "smoke")
    a = vision.DIGITS_SOURCE.fingerprint()
    assert a != vision.SourceRecipe(**{**vision.DIGITS_SOURCE.__dict__, "epochs": 2}).fingerprint()
    monkeypatch.setenv("PRETRAIN_LESSONS_SCALE", "cpu")
    assert a != vision.DIGITS_SOURCE.fingerprint()


def test_cached_recomputes_only_for_a_new_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3)}

    value, loaded = vision.cached("f", "one", compute)
    assert not loaded and torch.equal(value["x"], torch.arange(3))
    assert vision.cached("f", "one", compute)[1] and len(calls) == 1
    assert not vision.cached("f", "two", compute)[1] and len(calls) == 2
    assert not list(paths.checkpoint_dir("lesson06-cache").glob("*.tmp"))


def test_task_features_are_cached_per_network(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path))
    task = vision.make_task("t", _fake_data(), [0, 1], ["0", "1"], 6, 3, 4)
    torch.manual_seed(0)
    net = vision.resnet18_for(1, 10)
    feats, loaded = vision.task_features("r18", vision.feature_extractor(net, "layer3"), task, vision.mnist_normalize)
    assert not loaded and feats["pool"].shape == (12, 256) and feats["val"].shape == (6, 256) and feats["test"].shape == (8, 256)
    assert vision.task_features("r18", vision.feature_extractor(net, "layer3"), task, vision.mnist_normalize)[1]
    torch.manual_seed(1)
    other = vision.resnet18_for(1, 10)
    assert not vision.task_features("r18", vision.feature_extractor(other, "layer3"), task, vision.mnist_normalize)[1]


def test_probe_is_deterministic_and_learns_separable_features():
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 5
    labels = torch.arange(3).repeat(20)
    feats = centres[labels] + torch.randn(60, 16) + 100                  # a large offset: the probe standardises
    probe = vision.train_probe(feats, labels, num_classes=3, steps=100)
    assert (probe(feats).argmax(1) == labels).float().mean() == 1.0
    a = vision.probe_predictions(feats[:30], labels[:30], feats, 3)
    assert torch.equal(a, vision.probe_predictions(feats[:30], labels[:30], feats, 3))


def test_fine_tune_keeps_the_weights_of_the_best_validation_check():
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.arange(40) % 2
    x[:, 0] += 3 * y                                                     # learnable
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model, info = vision.fine_tune(model, optimizer, x, y, x, y, steps=20, batch_size=8, checks=4)
    assert [s for s, _ in info["curve"]] == [5, 10, 15, 20]
    best = max(info["curve"], key=lambda c: c[1])
    assert info["step"] == best[0] and info["val_accuracy"] == best[1]
    assert (vision.predict_classes(model, x) == y).float().mean().item() == pytest.approx(best[1])
    assert not model.training


def test_with_head_scores_the_old_task_without_touching_the_model():
    model = vision.resnet18_for(1, 3)
    old = nn.Linear(512, 5)
    other = vision.with_head(model, old)
    assert other.fc.out_features == 5 and model.fc.out_features == 3 and other.fc is not old
    assert torch.equal(other.fc.weight, old.weight) and not other.training


def test_attempt_reports_warnings_and_errors_quietly():
    import warnings

    def build():
        warnings.warn("old API")
        print("chatter")
        raise OSError("no network")

    result, warned, error = vision.attempt(build, quiet=True)
    assert result is None and warned == ["old API"] and error == "OSError: no network"
    assert vision.attempt(lambda: 3, quiet=True) == (3, [], None)


def _widget_inputs():
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(10)
    feats = {"pool": torch.randn(30, 8) + labels[:, None], "val": torch.randn(12, 8) + torch.arange(3).repeat(4)[:, None]}
    return {"t": {"a": feats, "b": {k: v * 2 for k, v in feats.items()}}}, {"t": (labels, torch.arange(3).repeat(4), ["x", "y", "z"])}


def test_probe_spread_remembers_each_draw():
    from pretrain_lessons.widgets.lesson06 import ProbeSpread

    spread = ProbeSpread(*_widget_inputs())
    values = spread.spread("t", "a", 2, 5)
    assert values.shape == (5,) and len(spread.memo) == 5 and len(set(values.tolist())) > 1
    assert spread.run("t", "a", 2, 3)[0] == values[3]


def test_live_probe_renders_and_follows_the_controls():
    from pretrain_lessons.widgets.lesson06 import live_probe

    widget = live_probe(*_widget_inputs(), budgets=(1, 2, 5, 20), n_draws=4)
    (target, name), (budget, draw) = widget.children[0].children, widget.children[1].children
    assert budget.options == (1, 2, 5)                                   # 20 > the 10 images per class in the pool
    assert name.options == ("a", "b") and draw.max == 3
    draw.value = 2
    budget.value = 5
    name.value = "b"                                                     # redraws (must not raise)
