"""Training pieces: the head, weight-decay groups, freezing, and the mixed-precision step with loss scaling."""

from __future__ import annotations

import pytest

import mindspore as ms
from mindspore import nn
import numpy as np

from job.config import load_settings
from job.feeds import HostFeed
from job.models.googlenet import googlenet
from job.train import Trainer, _train_step, build_optimizer, fine_tune_network, write_checkpoint

pytestmark = pytest.mark.slow  # trains with MindSpore or runs a heavy tool: not in make test-fast

REQUIRED = {"FT_MODEL": "m", "FT_TRAIN_DATA": "t", "FT_EVAL_DATA": "e", "FT_OUTPUT": "o"}


def test_head_uses_model_zoo_names_and_decay_skips_batchnorm_and_bias():
    network = fine_tune_network(googlenet(include_top=False), 7, freeze_backbone=False)
    names = [parameter.name for parameter in network.trainable_params()]
    assert names[-2:] == ["classifier.weight", "classifier.bias"]
    optimizer = build_optimizer(network, [0.1, 0.2], momentum=0.9, weight_decay=4e-5)
    decayed = {parameter.name for parameter, flag in zip(optimizer.parameters, optimizer.decay_flags) if flag}
    assert "conv1.conv.weight" in decayed and "classifier.weight" in decayed
    assert not any(name.endswith((".gamma", ".beta", ".bias")) for name in decayed)
    assert len(decayed) == 57 + 1  # every convolution and the dense weight


def test_frozen_backbone_trains_only_the_head():
    network = fine_tune_network(googlenet(include_top=False), 4, freeze_backbone=True)
    assert [parameter.name for parameter in network.trainable_params()] == ["classifier.weight", "classifier.bias"]


def test_o2_step_with_dynamic_loss_scaling_updates_the_head():
    ms.set_context(mode=ms.GRAPH_MODE)
    settings = load_settings({**REQUIRED, "FT_AMP_LEVEL": "O2"})
    network = fine_tune_network(googlenet(include_top=False), 3, freeze_backbone=True)
    before = network.head.classifier.weight.asnumpy().copy()
    optimizer = build_optimizer(network, [0.1] * 4, momentum=0.9, weight_decay=0.0)
    step = _train_step(network, optimizer, settings, 1)
    assert step.loss_scaler is not None
    images = ms.Tensor(np.random.rand(4, 3, 32, 32).astype(np.float32))
    labels = ms.Tensor(np.array([0, 1, 2, 0], dtype=np.int32))
    for _ in range(2):
        loss, correct = step(images, labels)
    assert np.isfinite(loss.asnumpy()) and 0 <= correct.asnumpy() <= 4
    assert not np.array_equal(network.head.classifier.weight.asnumpy(), before)
    saved = {parameter.name for parameter in step.get_parameters()}
    assert {"scale_value", "counter"} <= saved  # the loss scale is part of the training state


def test_a_step_on_features_trains_the_saved_head_and_keeps_the_schedule(tmp_path):
    ms.set_context(mode=ms.GRAPH_MODE)
    settings = load_settings({**REQUIRED, "FT_AMP_LEVEL": "O2", "FT_FREEZE_BACKBONE": "true", "FT_LR_INIT": "0.01"})
    network = fine_tune_network(googlenet(include_top=False), 3, freeze_backbone=True)
    trainer = Trainer(network, settings, steps_per_epoch=4)
    saved = {parameter.name for parameter in trainer.step.get_parameters()}
    before = {parameter.name: parameter.asnumpy().copy() for parameter in network.get_parameters()}
    trainer.train_on_features()
    features = ms.Tensor(np.random.rand(4, 1024).astype(np.float32))
    loss, correct = trainer.active_step(features, ms.Tensor(np.array([0, 1, 2, 0], dtype=np.int32)))
    assert np.isfinite(loss.asnumpy()) and 0 <= correct.asnumpy() <= 4
    assert trainer.global_step == 1  # the optimizer's counter, hence the learning-rate position, moved
    write_checkpoint(trainer.snapshot(), tmp_path / "state.ckpt")
    state = ms.load_checkpoint(str(tmp_path / "state.ckpt"))
    assert set(state) == saved  # the whole network's training state, as without features
    assert int(state["global_step"].asnumpy()[0]) == 1 and state["moments.classifier.weight"].asnumpy().any()
    for name, value in before.items():  # the head learned, the backbone stayed
        assert np.array_equal(state[name].asnumpy(), value) == (not name.startswith("classifier")), name


class HostReads:
    """Counts the ways a MindSpore tensor's value reaches the host (each one waits for the device)."""

    METHODS = ("asnumpy", "_item", "tolist")

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        for name in self.METHODS:
            monkeypatch.setattr(ms.Tensor, name, self._counted(getattr(ms.Tensor, name)))

    def _counted(self, method):
        def counted(tensor, *args, **kwargs):
            self.count += 1
            return method(tensor, *args, **kwargs)

        return counted


def _features_trainer(log_every: int) -> Trainer:
    """A trainer of GoogLeNet's new head on pooled features, seeded: two calls give the same weights."""
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(7)
    settings = load_settings({**REQUIRED, "FT_FREEZE_BACKBONE": "true", "FT_LOG_EVERY": str(log_every)})
    trainer = Trainer(fine_tune_network(googlenet(include_top=False), 3, freeze_backbone=True), settings, 6)
    trainer.train_on_features()
    return trainer


def test_an_epoch_reads_the_device_once_per_progress_window_and_at_its_end(monkeypatch):
    import io
    import json

    from job.features import FeatureSet
    from job.progress import Progress

    rng = np.random.default_rng(3)
    rows = FeatureSet(rng.standard_normal((24, 1024)).astype(np.float32), rng.integers(0, 3, 24).astype(np.int32))
    batches = rows.dataset(training=False, batch_size=4)  # 6 steps, in order

    reference = _features_trainer(log_every=1)  # the same steps, every loss read on the host
    losses, correct = [], 0.0
    for _ in range(2):
        losses, correct = [], 0.0
        for images, targets in batches.create_tuple_iterator(num_epochs=1):
            loss, hits = reference.active_step(images, targets)
            losses.append(float(loss.asnumpy()))
            correct += float(hits.asnumpy())

    trainer = _features_trainer(log_every=4)
    lines = io.StringIO()
    feed = HostFeed(lambda epoch: batches)
    trainer.train_epoch(1, feed, Progress(lines, as_json=True), lambda: None)  # compiles: reads constants once
    lines.truncate(0)
    lines.seek(0)
    reads = HostReads(monkeypatch)
    stops = []
    record = trainer.train_epoch(2, feed, Progress(lines, as_json=True), lambda: stops.append(reads.count))
    assert stops == [0, 0, 1, 1, 1, 1]  # steps 7 to 12: nothing read until the window at step 8 closes
    assert reads.count == 2  # the windows at steps 8 and 12; the end of the epoch reuses the last one
    steps = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [(event["event"], event["step"]) for event in steps] == [("step", 8), ("step", 12)]
    assert steps[0]["loss"] == pytest.approx(np.mean(losses[:2]), abs=1e-5)  # the epoch's mean so far
    assert steps[0]["lr"] == pytest.approx(trainer.rates[7])
    assert record.loss == pytest.approx(np.mean(losses), rel=1e-5)  # the device sums are the host's
    assert record.train_accuracy == pytest.approx(correct / 24)
    assert record.lr == pytest.approx(trainer.rates[11]) and trainer.global_step == 12


class CpuDataSink:
    """A stand-in for mindspore.data_sink, which refuses the CPU: the same contract, run on the host. One
    transfer per dataset (the real one raises on a second), the dataset repeated without end, and each call of
    the returned function takes the next `sink_size` batches from the queue and runs `fn` on each."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, fn, dataset, sink_size=1, jit_config=None):
        if hasattr(dataset, "sunk_by_stand_in"):
            raise ValueError("The dataset has been used with network.")
        dataset.sunk_by_stand_in = True
        self.calls.append({"sink_size": sink_size, "jit_config": jit_config})
        epochs = dataset.create_tuple_iterator(num_epochs=-1)  # ends each epoch with StopIteration

        def repeated():
            while True:
                yield from epochs

        queue = repeated()

        def sunk():
            for _ in range(sink_size):
                out = fn(*next(queue))
            return out

        return sunk


def test_the_device_sink_sends_one_dataset_per_attempt_and_trains_as_host_feeding(monkeypatch):
    from job.features import FeatureSet
    from job.feeds import DeviceSink
    from job.progress import Progress

    rng = np.random.default_rng(5)
    rows = FeatureSet(rng.standard_normal((24, 1024)).astype(np.float32), rng.integers(0, 3, 24).astype(np.int32))
    host = _features_trainer(log_every=4)
    host_records = [
        host.train_epoch(
            epoch, HostFeed(lambda _: rows.dataset(training=False, batch_size=4)), Progress(), lambda: None
        )
        for epoch in (3, 4)
    ]

    stand_in = CpuDataSink()
    monkeypatch.setattr(ms, "data_sink", stand_in)
    built = []

    def build(epoch: int):
        built.append(epoch)
        return rows.dataset(training=False, batch_size=4)

    sink = DeviceSink(build, first_epoch=3, global_batch=4)
    sunk = _features_trainer(log_every=4)
    reads = HostReads(monkeypatch)
    stops: list[int] = []
    records = [sunk.train_epoch(epoch, sink, Progress(), lambda: stops.append(reads.count)) for epoch in (3, 4)]
    assert built == [3] and len(stand_in.calls) == 1  # one dataset, one transfer, one graph for the attempt
    assert stand_in.calls[0]["sink_size"] == 1 and isinstance(stand_in.calls[0]["jit_config"], ms.JitConfig)
    first = stops[0]  # the optimizer's counter and the constants the graph's compilation reads
    # a stop check per step, and one read per progress window (steps 4, 8, 12) and at the end of epoch 3
    assert [count - first for count in stops] == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    for record, expected in zip(records, host_records):
        assert record.loss == pytest.approx(expected.loss, rel=1e-5)
        assert record.train_accuracy == expected.train_accuracy
    assert sunk.global_step == host.global_step == 12


def test_the_cpu_feeds_from_the_host_because_mindspore_sinks_only_on_devices():
    from contract.settings import DeviceTarget
    from job.features import FeatureSet
    from job.feeds import DeviceSink, for_device

    rows = FeatureSet(np.zeros((8, 4), dtype=np.float32), np.zeros(8, dtype=np.int32))
    assert isinstance(
        for_device(DeviceTarget.CPU, lambda _: rows.dataset(training=True, batch_size=4), 1, 4, 1), HostFeed
    )
    for target in (DeviceTarget.GPU, DeviceTarget.ASCEND):
        assert isinstance(for_device(target, lambda _: rows.dataset(training=True, batch_size=4), 1, 4, 1), DeviceSink)
    with pytest.raises(ValueError, match="ascend or gpu"):
        ms.data_sink(lambda *batch: None, rows.dataset(training=True, batch_size=4))


def test_prediction_pads_the_last_batch_and_gives_each_row_its_own_logits():
    from job.evaluate import predict
    from job.features import FeatureSet

    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(11)
    rows = FeatureSet(rng.standard_normal((10, 6)).astype(np.float32), rng.integers(0, 3, 10).astype(np.int32))
    network = nn.SequentialCell([nn.Dense(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 3)])
    shapes = []

    class Recorded:
        def set_train(self, mode: bool) -> None:
            network.set_train(mode)

        def __call__(self, images):
            shapes.append(tuple(images.shape))
            return network(images)

    logits, labels = predict(Recorded(), rows.dataset(training=False, batch_size=4))  # batches of 4, 4 and 2
    assert shapes == [(4, 6)] * 3  # one input shape: one compiled graph
    network.set_train(False)
    one_by_one = np.concatenate([network(ms.Tensor(rows.features[i : i + 1])).asnumpy() for i in range(10)])
    assert logits.shape == (10, 3) and labels.tolist() == rows.labels.tolist()
    np.testing.assert_allclose(logits, one_by_one, rtol=1e-5, atol=1e-6)


def test_a_snapshot_keeps_the_state_it_was_taken_at(tmp_path):
    trainer = _features_trainer(log_every=4)
    snapshot = trainer.snapshot()
    before = {entry["name"]: entry["data"].asnumpy().copy() for entry in snapshot}
    features = ms.Tensor(np.ones((4, 1024), dtype=np.float32))
    trainer.active_step(features, ms.Tensor(np.array([0, 1, 2, 0], dtype=np.int32)))  # moves weights, step counter
    write_checkpoint(snapshot, tmp_path / "state.ckpt")
    written = ms.load_checkpoint(str(tmp_path / "state.ckpt"))
    assert set(written) == {parameter.name for parameter in trainer.step.get_parameters()}
    changed = [name for name, value in before.items() if not np.array_equal(written[name].asnumpy(), value)]
    assert changed == []
    assert trainer.global_step == 1 and int(written["global_step"].asnumpy().reshape(-1)[0]) == 0
