"""Lesson 05's experiment runner: jobs are repeatable, choices use validation only, parallel = serial."""
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from pretrain_lessons import finetune
from pretrain_lessons import label_efficiency as le
from pretrain_lessons.data.loaders import minilm_dir

GOOD = ["good", "great fun", "a wonderful film", "moving and funny", "fine acting", "loved it"]
BAD = ["bad", "dull", "an awful film", "boring and long", "weak acting", "hated it"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A stand-in for lesson 04's checkpoint: a very small masked-LM BERT saved with a tokenizer."""
    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def data(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(finetune.paths, "checkpoint_dir", lambda name: tmp_path / name)
    (tmp_path / "minilm-features").mkdir()
    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 2, size=n)
        return [(GOOD if y else BAD)[rng.integers(0, 6)] for y in labels], labels.tolist()

    le.set_data({"train": split(40), "validation": split(16), "test": split(16)}, tiny_dir=tiny_folder)
    yield
    le._DATA.clear()


SMALL = le.Recipe(lrs=(3e-3,), epochs=2, batch_size=8, evals_per_run=2, patience=1)


def test_subsets_are_stratified_draws_shared_by_every_model(data):
    texts_a, labels_a = le.subset(20, draw=1)
    texts_b, labels_b = le.subset(20, draw=1)
    assert texts_a == texts_b and len(texts_a) == 20
    assert le.subset(20, draw=2)[0] != texts_a
    assert len(le.subset(10_000, draw=0)[0]) == 40      # a budget above the split: all of it


@pytest.mark.parametrize("model", [le.BOW, le.SCRATCH, le.PRETRAINED])
def test_a_job_returns_its_test_predictions_and_is_repeatable(data, model):
    job = {"model": model, "n": 30, "draw": 0, "lr": 3e-3, "recipe": SMALL}
    first, second = le.run_job(job), le.run_job(job)
    assert first["test_pred"].shape == (16,) and 0 <= first["val_accuracy"] <= 1
    assert first["test_accuracy"] == float(np.mean(first["test_pred"] == le._split("test")[1]))
    np.testing.assert_array_equal(first["test_pred"], second["test_pred"])


def test_the_probe_uses_cached_features(data, tmp_path):
    result = le.run_job({"model": le.PROBE, "n": 30, "draw": 0, "keep_model": True})
    assert result["test_pred"].shape == (16,) and hasattr(result["fitted"], "predict")
    assert len(list((tmp_path / "minilm-features").glob("*.npy"))) == 3     # train, validation, test


def test_scratch_and_pretrained_differ_only_in_their_starting_weights(data):
    scratch, _ = le.build(le.SCRATCH)
    pretrained, _ = le.build(le.PRETRAINED)
    assert [n for n, _ in scratch.named_parameters()] == [n for n, _ in pretrained.named_parameters()]
    saved = BertForMaskedLM.from_pretrained(le._DATA["tiny_dir"]).bert.embeddings.word_embeddings.weight
    assert torch.equal(pretrained.bert.embeddings.word_embeddings.weight, saved)
    assert not torch.equal(scratch.bert.embeddings.word_embeddings.weight, saved)


def test_seed001_arms_run_and_the_unmasked_arm_predicts_the_seeds_way(data):
    plain = le.run_job({"model": "seed 001 ablation", "arm": 0, "n": 24, "draw": 0, "epochs": 1})
    masked = le.run_job({"model": "seed 001 ablation", "arm": 1, "n": 24, "draw": 0, "epochs": 1,
                         "score_validation": True})
    assert plain["name"] == "seed 001 as written" and masked["name"] == "+ attention mask"
    assert plain["test_pred"].shape == masked["test_pred"].shape == (16,)
    assert "val_accuracy" in masked and "val_accuracy" not in plain


def test_learning_rates_are_chosen_on_validation_and_reused_at_the_nearest_swept_budget():
    sweep = [{"model": "m", "n": 100, "lr": 1e-4, "val_accuracy": 0.6, "test_accuracy": 0.9},
             {"model": "m", "n": 100, "lr": 3e-4, "val_accuracy": 0.7, "test_accuracy": 0.1},
             {"model": "m", "n": 1000, "lr": 1e-4, "val_accuracy": 0.8, "test_accuracy": 0.5}]
    chosen = le.choose_lr(sweep)
    assert chosen == {("m", 100): 3e-4, ("m", 1000): 1e-4}     # validation decides, never the test
    lrs = le.lr_for_budgets(chosen, {"m": [100, 300, 3000, 10_000]})
    assert lrs == {("m", 100): 3e-4, ("m", 300): 3e-4, ("m", 3000): 1e-4, ("m", 10_000): 1e-4}
    with pytest.raises(ValueError, match="sweep"):
        le.lr_for_budgets(chosen, {"other": [100]})


def test_draw_jobs_skip_runs_already_done_and_mark_the_one_to_save():
    lrs = {(le.MINILM, 100): 1e-4}
    done = [{"model": le.MINILM, "n": 100, "draw": 0, "lr": 1e-4}, {"model": le.MINILM, "n": 100, "draw": 1, "lr": 3e-4}]
    jobs = le.draw_jobs({le.MINILM: [100]}, lrs, 3, done=done, save={(le.MINILM, 100, 2): "/somewhere"})
    assert [(j["draw"], j.get("save_to")) for j in jobs] == [(1, None), (2, "/somewhere")]
    runs = le.chosen_runs(done, lrs)
    assert runs == done[:1]
    lrs[(le.MINILM, 10_000)] = 1e-4
    more_and_fewer = le.draw_jobs({le.MINILM: [100, 10_000]}, lrs, 3,
                                  draws_for={(le.MINILM, 100): 5, (le.MINILM, 10_000): 1})
    assert [(j["n"], j["draw"]) for j in more_and_fewer] == [(100, d) for d in range(5)] + [(10_000, 0)]


def test_fixed_jobs_run_once_on_all_labels():
    jobs = le.fixed_jobs({le.BOW: [10, 40]}, draws=3, n_all=40)
    assert [(j["n"], j["draw"], j.get("keep_model", False)) for j in jobs] == [(10, 0, False), (10, 1, False),
                                                                                 (10, 2, False), (40, 0, True)]


def test_curves_and_labels_to_match():
    runs = [{"model": le.BOW, "n": n, "draw": d, "test_accuracy": a}
            for (n, d, a) in [(10, 0, 0.6), (10, 1, 0.62), (40, 0, 0.8)]]
    runs += [{"model": le.PROBE, "n": n, "draw": d, "test_accuracy": a}
             for (n, d, a) in [(10, 0, 0.79), (10, 1, 0.83), (40, 0, 0.85)]]
    curve = le.by_model(runs)
    assert curve == {le.BOW: {10: [0.6, 0.62], 40: [0.8]}, le.PROBE: {10: [0.79, 0.83], 40: [0.85]}}
    assert le.labels_to_match(runs, 0.8, [10, 40]) == {le.BOW: 40, le.PROBE: 10}
    assert le.labels_to_match(runs, 0.9, [10, 40]) == {le.BOW: None, le.PROBE: None}


def test_parallel_workers_give_the_serial_results(data):
    jobs = [{"model": le.BOW, "n": 30, "draw": d} for d in range(2)]
    serial = le.run_jobs(jobs, workers=1, progress=False)
    parallel = le.run_jobs(jobs, workers=2, progress=False)
    for a, b in zip(serial, parallel):
        assert (a["n"], a["draw"]) == (b["n"], b["draw"])
        np.testing.assert_array_equal(a["test_pred"], b["test_pred"])
    pool = le._POOL["pool"]
    again = le.run_jobs(jobs[:1], workers=2, progress=False)          # the same data: the same worker processes
    assert le._POOL["pool"] is pool
    np.testing.assert_array_equal(again[0]["test_pred"], serial[0]["test_pred"])
    le.close_pool()
    assert "pool" not in le._POOL


def test_results_are_cached_under_a_key_of_their_settings(data, tmp_path):
    cache = tmp_path / "results"
    cache.mkdir()
    jobs = [{"model": le.BOW, "n": 30, "draw": d} for d in range(2)]
    first = le.run_jobs(jobs, workers=1, progress=False, cache=cache)
    assert len(list(cache.glob("*.pkl"))) == 2 and not any(r.get("cached") for r in first)
    again = le.run_jobs(jobs, workers=1, progress=False, cache=cache)
    assert all(r.get("cached") for r in again)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["test_pred"], b["test_pred"])
    # other data, another recipe or another scale: another key, so a stale result is never served
    key = le.job_key(jobs[0])
    assert le.job_key({**jobs[0], "draw": 5}) != key
    fine = {"model": le.SCRATCH, "n": 30, "draw": 0, "lr": 1e-3}
    assert le.job_key(fine) != le.job_key({**fine, "recipe": SMALL})
    texts, labels = le._DATA["train"]
    le.set_data({"train": (texts[::-1], labels[::-1]), "validation": le._DATA["validation"],
                 "test": le._DATA["test"]}, tiny_dir=le._DATA["tiny_dir"])
    assert le.job_key(jobs[0]) != key


def test_a_cached_run_that_saved_a_model_reruns_when_the_model_is_gone(data, tmp_path):
    cache, folder = tmp_path / "results", tmp_path / "kept"
    cache.mkdir()
    job = {"model": le.SCRATCH, "n": 20, "draw": 0, "lr": 3e-3, "recipe": SMALL, "save_to": str(folder)}
    le.run_jobs([job], workers=1, progress=False, cache=cache)
    assert (folder / "job.json").exists()
    assert le.run_jobs([job], workers=1, progress=False, cache=cache)[0].get("cached")
    import shutil
    shutil.rmtree(folder)
    assert not le.run_jobs([job], workers=1, progress=False, cache=cache)[0].get("cached")
    assert (folder / "job.json").exists()


def test_snapshot_jobs_start_from_their_own_weights_and_the_final_one_is_the_curves_job(data, tiny_folder, tmp_path):
    torch.manual_seed(1)
    early = tmp_path / "step-0"
    BertForMaskedLM(BertConfig.from_pretrained(tiny_folder)).save_pretrained(early)
    snaps = {0: early, 10: tiny_folder}
    sweep = le.snapshot_jobs(snaps, 30, draws=2)
    grid = le.recipe(le.PRETRAINED, 30, 40).lrs
    assert [(j["pretraining_steps"], j["draw"], j["lr"], "weights" in j) for j in sweep] == \
        [(0, 0, lr, True) for lr in grid] + [(10, 0, lr, False) for lr in grid]
    jobs = le.snapshot_jobs(snaps, 30, draws=2, lrs={0: 3e-3, 10: 1e-3})
    assert [(j["pretraining_steps"], j["draw"], j["lr"]) for j in jobs] == [(0, 0, 3e-3), (0, 1, 3e-3),
                                                                          (10, 0, 1e-3), (10, 1, 1e-3)]
    assert jobs[2] == {"model": le.PRETRAINED, "n": 30, "draw": 0, "lr": 1e-3, "pretraining_steps": 10}
    # The cache key follows the weights, not the folder's name or the label.
    moved = tmp_path / "elsewhere"
    BertForMaskedLM.from_pretrained(early).save_pretrained(moved)
    assert le.job_key(jobs[0]) == le.job_key(dict(jobs[0], weights=str(moved), pretraining_steps=99))
    assert le.job_key(jobs[0]) != le.job_key(dict(jobs[0], weights=None))
    model, _ = le.build(le.PRETRAINED, weights=str(early))
    saved = BertForMaskedLM.from_pretrained(early).bert.embeddings.word_embeddings.weight
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, saved)
    chosen = le.choose_lr([{"pretraining_steps": 0, "lr": 1e-3, "val_accuracy": 0.6},
                           {"pretraining_steps": 0, "lr": 3e-3, "val_accuracy": 0.7}], by="pretraining_steps")
    assert chosen == {0: 3e-3}


def test_a_cached_result_carries_the_label_of_the_job_that_asks(data, tmp_path, tiny_folder):
    cache = tmp_path / "results"
    cache.mkdir()
    job = {"model": le.PRETRAINED, "n": 20, "draw": 0, "lr": 3e-3, "recipe": SMALL}
    le.run_jobs([job], workers=1, progress=False, cache=cache)              # the curve's run
    (hit,) = le.run_jobs([{**job, "pretraining_steps": 40}], workers=1, progress=False, cache=cache)
    assert hit.get("cached") and hit["pretraining_steps"] == 40             # the same run, asked as a snapshot
    # A retrained model with the same weights (only its training time differs) keeps its cached results.
    key = le.job_key(job)
    (tiny_folder / "summary.json").write_text('{"seconds": 123}')
    le._folder_digest.cache_clear()
    try:
        assert le.job_key(job) == key
    finally:
        (tiny_folder / "summary.json").unlink()
        le._folder_digest.cache_clear()


def test_a_seed001_arm_gives_the_same_result_whatever_ran_before_it(data):
    job = {"model": "seed 001 ablation", "arm": 1, "n": 24, "draw": 0, "epochs": 1}
    torch.manual_seed(123)
    first = le.run_job(job)
    torch.rand(1000)                      # a worker process that ran something else first
    second = le.run_job(job)
    np.testing.assert_array_equal(first["test_pred"], second["test_pred"])
    assert first["test_accuracy"] == second["test_accuracy"]
