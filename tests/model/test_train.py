"""The training loop: seeded and reproducible, resumable, and learning on real images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from contract.preprocess import PreprocessSpec, preprocess_file
from hub import dataset
from hub.config import TrainConfig
from hub.experiment import score
from hub.pool import GOLD, TRAIN, VAL
from hub.train import XrayDataset, fit, recalibrate_batchnorm
from hub.trained_model import TrainedModel
from tests.conftest import sample_files

TINY = TrainConfig(
    epochs=2, batch_size=8, image_size=64, weights="none", num_workers=0, max_train_images=24, patience=5
)


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def view(hub_paths):
    return dataset.training_view(hub_paths)


def test_same_seed_same_model_other_seed_other_model(view, tmp_path):
    a = fit(TINY, view.files(TRAIN), view.files(VAL), tmp_path / "a")
    b = fit(TINY, view.files(TRAIN), view.files(VAL), tmp_path / "b")
    c = fit(dataclasses.replace(TINY, seed=1), view.files(TRAIN), view.files(VAL), tmp_path / "c")
    assert _same_weights(a.model, b.model)
    assert not _same_weights(a.model, c.model)
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]


def test_resume_continues_exactly_where_it_stopped(view, tmp_path):
    straight = fit(TINY, view.files(TRAIN), view.files(VAL), tmp_path / "straight")
    fit(dataclasses.replace(TINY, epochs=1), view.files(TRAIN), view.files(VAL), tmp_path / "resumed")
    resumed = fit(TINY, view.files(TRAIN), view.files(VAL), tmp_path / "resumed", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert _same_weights(straight.model, resumed.model)


def test_early_stopping_stops_when_val_loss_stops_improving(view, tmp_path):
    cfg = dataclasses.replace(TINY, epochs=6, patience=1, lr=0.05)  # a rate that makes val loss bounce
    result = fit(cfg, view.files(TRAIN), view.files(VAL), tmp_path / "es")
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    # patience 1: training ends the epoch after the best one, or at the last epoch
    assert len(losses) == min(result.best_epoch + 1, 6)
    assert result.stopped_early == (result.best_epoch < 6)


def test_evaluation_input_equals_the_shared_numpy_preprocessing(tmp_path):
    files = sample_files("NORMAL", 2) + sample_files("PNEUMONIA", 2)
    spec = PreprocessSpec(size=224)
    ds = XrayDataset(files, [0, 0, 1, 1], spec, augment=False)
    for i, f in enumerate(files):
        x, _ = ds[i]
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32
        assert np.array_equal(x.numpy(), preprocess_file(f, spec))


def test_rgb_and_16_bit_images_give_the_same_input_as_grayscale(tmp_path):
    f = sample_files("PNEUMONIA", 1)[0]
    gray = np.asarray(Image.open(f))
    Image.open(f).convert("RGB").save(tmp_path / "rgb.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")  # 16-bit, same picture
    ref = preprocess_file(f)
    assert np.abs(preprocess_file(tmp_path / "rgb.png") - ref).max() < 1e-5
    assert np.abs(preprocess_file(tmp_path / "sixteen.png") - ref).max() < 1e-5


def test_score_uses_the_bundle_threshold_and_temperature(view, tmp_path):
    result = fit(TINY, view.files(TRAIN), view.files(VAL), tmp_path / "s")
    from hub.trained_model import ModelInfo

    info = ModelInfo(
        preprocess=TINY.spec().to_dict(),
        temperature=2.0,
        threshold=0.0,
        target_sensitivity=0.95,
        dataset_version=view.version,
    )
    trained = TrainedModel(result.model, info)
    s = score(trained, view, GOLD)
    assert s.metrics.recall == 1.0 and s.metrics.specificity == 0.0  # threshold 0: all PNEUMONIA
    trained.save(tmp_path / "trained_model")
    again = TrainedModel.load(tmp_path / "trained_model")
    assert again.info == info and _same_weights(again.model, trained.model)
    assert np.allclose(score(again, view, GOLD).p, s.p)


def test_batchnorm_recalibration_sets_the_statistics_of_the_data_and_nothing_else():
    """Precise BN: the running statistics become the data's, the weights and momentum stay."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    model[1].running_mean.fill_(5.0)  # stale statistics, as after a few fast-moving training steps
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    data = [torch.randn(8, 3, 12, 12) * 2 + 1 for _ in range(3)]
    recalibrate_batchnorm(model, [(x, None) for x in data], torch.device("cpu"))
    with torch.no_grad():
        conv = torch.cat([model[0](x) for x in data])
    assert torch.allclose(model[1].running_mean, conv.mean((0, 2, 3)), atol=1e-5)
    # the average of the three batches' variances (equal-sized batches): close to the data's variance
    assert torch.allclose(model[1].running_var, conv.var((0, 2, 3)), rtol=0.05)
    assert model[1].momentum == 0.1
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_invalid_precise_bn_setting_is_refused_with_its_name():
    with pytest.raises(ValueError, match="Invalid precise_bn_images -1"):
        dataclasses.replace(TINY, precise_bn_images=-1).validate()


def test_sampling_balances_sites_and_classes_so_a_small_site_is_not_drowned():
    from hub.train import make_loader, site_balanced_weights

    # site A: 900 PNEUMONIA + 300 NORMAL; site B: 30 + 30
    groups = ["a"] * 1200 + ["b"] * 60
    labels = [1] * 900 + [0] * 300 + [1] * 30 + [0] * 30
    assert site_balanced_weights(["a"] * 10, [0, 1] * 5) is None, "one site: the loader shuffles as before"
    w = site_balanced_weights(groups, labels)
    mass = {}
    for g, y, wi in zip(groups, labels, w):
        mass[(g, y)] = mass.get((g, y), 0.0) + wi
    assert all(abs(v - 0.25) < 1e-9 for v in mass.values()), mass

    ds = torch.utils.data.TensorDataset(torch.arange(len(groups)))
    drawn = torch.cat([b[0] for b in make_loader(ds, 64, True, seed=3, weights=w)]).numpy()
    assert len(drawn) == len(groups)
    share_b = np.isin(drawn, np.arange(1200, 1260)).mean()
    assert 0.4 < share_b < 0.6, f"site B is {share_b:.0%} of an epoch (5 % of the images)"
    again = torch.cat([b[0] for b in make_loader(ds, 64, True, seed=3, weights=w)]).numpy()
    assert (drawn == again).all(), "seeded: the same epoch draws the same images"


def test_with_two_sites_the_epoch_is_picked_on_the_site_average_of_val_losses(view, tmp_path):
    """The first site's many val images must not choose the epoch alone: each site's val loss counts
    equally (here the sample's val split read as two sites of very different size)."""
    files, labels = view.files(VAL)
    sites = ["big"] * (len(files) - 6) + ["small"] * 6
    result = fit(TINY, view.files(TRAIN), (files, labels), tmp_path / "s", val_groups=sites)
    for h in result.history:
        per_site = [h["val_loss_site_big"], h["val_loss_site_small"]]
        assert h["val_loss"] == pytest.approx(np.mean(per_site))
        assert per_site[0] != pytest.approx(per_site[1])
    assert result.best_epoch == int(np.argmin([h["val_loss"] for h in result.history])) + 1
    pooled = fit(TINY, view.files(TRAIN), (files, labels), tmp_path / "p")
    assert "val_loss_site_big" not in pooled.history[0]


def _iterate_in_daemon(queue) -> None:
    from hub.train import make_loader

    ds = torch.utils.data.TensorDataset(torch.arange(10.0))
    try:
        queue.put(sum(len(b[0]) for b in make_loader(ds, 4, False, num_workers=1)))
    except Exception as e:  # noqa: BLE001 - reported to the test
        queue.put(repr(e))


def test_a_loader_with_workers_runs_inside_a_daemonic_process_as_in_a_celery_worker():
    """Celery's prefork workers are daemonic and may not start children: loading falls back in-process."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    p = ctx.Process(target=_iterate_in_daemon, args=(queue,), daemon=True)
    p.start()
    got = queue.get(timeout=120)
    p.join(timeout=60)
    assert got == 10, got
