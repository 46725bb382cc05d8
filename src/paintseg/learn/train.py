"""Training from sparse strokes, as a generator of progress events that returns the model."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import label, regionprops

from paintseg.errors import InputError
from paintseg.learn.blend import blend, learn_forest_share
from paintseg.learn.events import StopFlag, Stopped, stop_requested
from paintseg.learn.forest import KnownPlanes, PixelForest, forest_probabilities
from paintseg.learn.memory import release_freed_memory
from paintseg.learn.metrics import semantic_scores
from paintseg.learn.model import Segmenter, scale_intensities
from paintseg.learn.objects import choose_split
from paintseg.learn.predict import predict_plane
from paintseg.learn.sampling import (
    PatchSampler,
    Plane,
    TrainingData,
    as_channels,
    compute_normalization,
    padded_tensor,
    prepare_training_data,
    stroke_window,
)
from paintseg.learn.synthesis import Synthesis

DEFAULT_SECONDS = 30.0
CONTINUE_SECONDS = 10.0  # default budget of a Continue round (correct, then continue)
EVENT_EVERY = 0.2  # seconds between events (the GUI consumes them)
WARMUP_STEPS = 10  # linear warm-up while the optimiser has no state yet
MIN_LR_FRACTION = 0.05  # the cosine schedule ends at this fraction of the peak rate
EMA_DECAY = 0.98  # the returned weights are an exponential moving average of the steps'
FIRST_PREVIEW = 1.0  # seconds of training before the first preview (then every preview_every)
WORSE_BY = 0.01  # a Continue that loses more balanced accuracy on held-out strokes is undone
CONTINUE_LR_FRACTION = 0.5  # a Continue's peak learning rate, as a share of the first's
SPLIT_CHOICE_PIXELS = 2_000_000  # pixels of painted planes the object split is chosen on
PSEUDO_LABELS_AT = 0.5  # share of the budget after which self-training's targets are made


@dataclass
class Preview:
    """A prediction of one plane made during training (the last one may list the places to
    paint next, ``learn.suggest.Suggestion``)."""

    image_index: int
    plane: tuple[int, ...]
    labels: np.ndarray  # (Y, X) class map, label i + 1 = class i
    confidence: np.ndarray  # (Y, X) probability of the predicted class
    suggestions: tuple = ()


@dataclass
class TrainEvent:
    """Progress of :func:`train`.

    ``loss`` is the mean training loss since the previous event; ``val`` (per class name:
    iou, precision, recall, f1, accuracy, ...) is set when validation ran for this event, with
    ``val_by_image`` (the balanced accuracy on each image's held-out strokes, by image index);
    ``eta`` is the estimated number of seconds left; ``note`` explains anything unusual
    (e.g. too few strokes to hold some out for validation).
    """

    step: int
    total_steps: int
    loss: float
    lr: float
    elapsed: float
    eta: float
    val: dict[str, dict[str, float]] | None = None
    val_by_image: dict[int, float] | None = None  # image index -> balanced accuracy
    preview: Preview | None = None
    done: bool = False
    note: str = ""


def train(
    model: Segmenter,
    images: Sequence[Any],
    annotations: Sequence[Any],
    *,
    seconds: float | None = None,
    steps: int | None = None,
    stop: StopFlag = None,
    preview: Callable[[], tuple[int, tuple[int, ...]] | None] | None = None,
    preview_every: float = 3.0,
    seed: int = 0,
    validate_every: float = 2.0,
) -> Generator[TrainEvent, None, Segmenter]:
    """Train ``model`` in place on the painted strokes; yields events, returns the model.

    Calling it again on the same model continues from the current weights and optimiser
    state, with whatever strokes are given (old and new).

    Parameters
    ----------
    model : Segmenter
    images : sequence
        Images, each ``(C, [Z|T...], Y, X)`` or a list of C arrays (numpy or dask).
    annotations : sequence
        One integer array per image, of the image's spatial shape: 0 = not annotated,
        1..K = classes.
    seconds, steps : optional
        Budget: stop after this many seconds or steps, whichever comes first
        (30 seconds if neither is given).
    stop : threading.Event or callable, optional
        Checked before every step; when set, training ends and the model is returned.
    preview : callable, optional
        Returns ``(image_index, plane)`` (or None) of the plane to preview; it is predicted
        every ``preview_every`` seconds and attached to the event.
    seed : int
        Seeds sampling, augmentation and the hold-out; seeded step-budget runs on a CPU are
        reproducible.
    validate_every : float
        Seconds between validations on the held-out strokes.

    Yields
    ------
    TrainEvent

    Returns
    -------
    Segmenter
        The same ``model``, trained. A continued model that scores worse on the held-out
        strokes than the weights it started from gets those weights back (the event says so).
    """
    if seconds is None and steps is None:
        seconds = DEFAULT_SECONDS
    start = time.perf_counter()
    torch.manual_seed(seed)
    images, annotations = _as_lists(images, annotations)
    channels = [as_channels(image) for image in images]
    for image in channels:
        model.check_channels(len(image))
    first_session = not model.is_trained
    config, recipe = model.config, model.recipe
    if first_session:  # kept from then on, so that continued training sees the same scale
        samples = 1e6 / len(channels)
        lows, highs = zip(*(compute_normalization(c, max_samples=samples) for c in channels))
        low, high = np.median(lows, axis=0).tolist(), np.median(highs, axis=0).tolist()
    else:
        low, high = config.norm_low, config.norm_high
    pad = max(recipe.patch_size, 4 * model.multiple)  # room for patches and val windows
    data = prepare_training_data(model.class_names, channels, annotations,
                                 lambda raw: scale_intensities(raw, low, high), pad,
                                 model.device)
    config.norm_low, config.norm_high = low, high  # only once the input passed all checks
    if recipe.forest_weight > 0 or config.forest_blend > 0:
        forest, known = _fit_forest(data, seed, soft_targets=recipe.forest_weight > 0)
        model.forest, model.forest_known = (forest, known) if config.forest_blend > 0 else (None, None)
    sampler = PatchSampler(data, recipe.patch_size, seed)
    synthesis = Synthesis(recipe.copy_paste_share, recipe.synthetic_share,
                          recipe.generator_seconds)
    session = _Session(model, data, first_session)
    should_stop = partial(stop_requested, stop)
    clock = _Clock(start, seconds, steps)  # the time budget includes this setup
    shown = _forest_preview(data, preview) if preview is not None else None
    if shown is not None:  # something useful on screen before the first step
        yield session.event([], clock, None, shown, False)
    validation = _Periodic(validate_every, share=0.1)
    previews = _Periodic(preview_every, share=0.25, first=min(FIRST_PREVIEW, preview_every))
    last_event = time.perf_counter()
    losses: list[float] = []
    done = False
    pseudo_labels_due = (first_session and recipe.pseudo_label_confidence > 0
                         and recipe.forest_weight > 0)  # a Continue is too short for it
    while not (clock.finished(session.step) or should_stop()):
        if pseudo_labels_due and clock.progress(session.step) >= PSEUDO_LABELS_AT:
            with session.averaged_weights():
                sure = _add_pseudo_labels(model, channels, data, recipe.pseudo_label_confidence,
                                          should_stop)
            if synthesis.on:
                yield from _synthesis(synthesis, session, sampler, sure, clock, should_stop, seed)
            del sure  # the maps are not kept for the rest of the training
            pseudo_labels_due = False
        images_batch, labels_batch, soft_batch = sampler.batch(recipe.batch_size)
        losses.append(session.step_on(images_batch, labels_batch, clock.progress(session.step),
                                      soft_batch))
        now = time.perf_counter()
        done = clock.finished(session.step) or should_stop()
        if done:  # the final validation and preview score the weights returned
            session.finish()
        val = shown = None
        if done:
            val = session.last_val
        elif validation.due():
            val = validation.run(session.validate)
        if preview is not None and (done or previews.due()):
            shown = previews.run(lambda: _preview(model, channels, preview, should_stop))
        if done or val or shown or now - last_event >= EVENT_EVERY or session.step == 1:
            yield session.event(losses, clock, val, shown, done)
            losses, last_event = [], time.perf_counter()
    if not done:  # stopped between steps: the last event says so
        session.finish()
        yield session.event(losses, clock, session.last_val, None, True)
    if not should_stop():
        config.objects = _choose_objects(model, channels, data)
    session.record_history(clock.elapsed())
    synthesis.record(config.history[-1], model)
    model.net.eval()
    del data, sampler, session  # so that what they held is free before it is handed back
    release_freed_memory()  # the planes, patches and forest: a long session stays flat
    return model


def _choose_objects(model: Segmenter, channels: list[list[Any]], data: TrainingData) -> dict:
    """How to find objects, chosen on the painted planes with the most object strokes (up
    to ``SPLIT_CHOICE_PIXELS``): the split that keeps painted object strokes whole
    (:func:`paintseg.learn.objects.choose_split`)."""
    objects = [i + 1 for i, c in enumerate(model.config.classes) if c.role == "object"]
    painted = []
    for plane in data.planes:
        p = plane.pad
        strokes = plane.train_labels[p:-p, p:-p].cpu().numpy().astype(np.int16)
        strokes = np.where(plane.val_labels > 0, plane.val_labels, strokes)
        painted.append((int(np.isin(strokes, objects).sum()), plane, strokes))
    painted.sort(key=lambda item: -item[0])
    chosen, pixels = [], 0
    for count, plane, strokes in painted:
        if count == 0 or (chosen and pixels + strokes.size > SPLIT_CHOICE_PIXELS):
            break
        image = channels[plane.image_index]
        found = predict_plane(model, image, plane.plane)
        planar = [np.asarray(c[plane.plane]) for c in image]
        chosen.append((found.labels, found.probabilities, strokes, planar))
        pixels += strokes.size
    return choose_split(chosen, model.config.classes) if chosen else {}


def _synthesis(synthesis: Synthesis, session: _Session, sampler: PatchSampler,
               sure: list[np.ndarray], clock: _Clock, stop: Callable[[], bool], seed: int
               ) -> Iterator[TrainEvent]:
    """Start ``synthesis`` on the planes that self-training made ``sure`` maps of (events
    while its generator learns), then let it change the sampler's batches."""
    planes = [plane.data[:, plane.pad:-plane.pad, plane.pad:-plane.pad]
              for plane in session.data.planes[:len(sure)]]
    seconds_left = None if clock.seconds is None else clock.seconds - clock.elapsed()
    for _ in synthesis.start(planes, sure, session.model.config.classes,
                             session.model.recipe.patch_size, seconds_left, stop, seed,
                             sampler.rng):
        yield session.event([], clock, None, None, False)
    session.note = " ".join(filter(None, [session.note, synthesis.note]))
    sampler.extra = synthesis.extra


def _fit_forest(data: TrainingData, seed: int, soft_targets: bool = True
                ) -> tuple[PixelForest, KnownPlanes | None]:
    """The random forest that predictions blend in, fitted on every stroke. With
    ``soft_targets``, a forest fitted on the training strokes alone (never the held-out ones,
    so that validation stays honest) gives the soft targets of every plane's unpainted pixels,
    and the returned forest's probabilities of the planes are kept for predicting them again."""
    unpadded = [(slice(None), slice(p.pad, -p.pad), slice(p.pad, -p.pad)) for p in data.planes]
    planes = [plane.data[window].cpu().numpy() for plane, window in zip(data.planes, unpadded)]
    labels = [plane.train_labels[window[1:]].cpu().numpy()
              for plane, window in zip(data.planes, unpadded)]
    all_labels = [np.where(plane.val_labels > 0, plane.val_labels, train).astype(train.dtype)
                  for plane, train in zip(data.planes, labels)]
    held_out = any((plane.val_labels > 0).any() for plane in data.planes)
    threads = torch.get_num_threads()
    if not soft_targets:
        return PixelForest.fit(planes, all_labels, data.n_classes, seed=seed,
                               threads=threads), None
    forest, probabilities, predicted = forest_probabilities(
        planes, labels, data.n_classes, seed=seed, threads=threads,
        all_labels=all_labels if held_out else None)
    known = KnownPlanes()
    for plane, normalized, soft, shown in zip(data.planes, planes, probabilities,
                                              predicted or probabilities):
        plane.soft = padded_tensor(soft, plane.pad, "constant", plane.data.device)
        known.add(normalized, shown)
    return forest, known


def _add_pseudo_labels(model: Segmenter, channels: list[list[Any]], data: TrainingData,
                       confidence: float, stop: Callable[[], bool] = lambda: False
                       ) -> list[np.ndarray]:
    """Self-training: where the network's prediction of a training plane is at least
    ``confidence`` sure, its class becomes the soft target (one-hot) instead of the forest's.
    Soft targets count only on pixels nobody painted, so painted pixels are never changed.
    ``stop`` is checked between planes, so that Stop is seen on a large image set.

    Returns the sure class maps of the planes done (class index, -1 where not sure)."""
    found = []
    for plane in data.planes:
        if stop():
            break
        probabilities = predict_plane(model, channels[plane.image_index], plane.plane,
                                      with_forest=False).probabilities
        p = plane.pad
        targets = plane.soft[:, p:-p, p:-p]
        best, classes = torch.as_tensor(np.asarray(probabilities, np.float32),
                                        device=targets.device).max(dim=0)
        sure = best >= confidence
        targets[:, sure] = F.one_hot(classes[sure], data.n_classes).T.to(targets.dtype)
        found.append(torch.where(sure, classes, -1).to(torch.int16).cpu().numpy())
    model.net.train()
    return found


def _forest_preview(data: TrainingData, request: Callable) -> Preview | None:
    """The forest's prediction of the plane on screen, when it is a training plane."""
    where = request()
    if where is None:
        return None
    image_index, plane = where
    for candidate in data.planes:
        if candidate.soft is not None and (candidate.image_index, candidate.plane) == \
                (image_index, tuple(plane)):
            p = candidate.pad
            soft = candidate.soft[:, p:-p, p:-p].float()
            confidence, labels = soft.max(dim=0)
            dtype = np.uint8 if data.n_classes <= 255 else np.uint16
            return Preview(image_index, tuple(plane), (labels + 1).cpu().numpy().astype(dtype),
                           confidence.cpu().numpy())
    return None


def _as_lists(images: Any, annotations: Any) -> tuple[list[Any], list[Any]]:
    """One image and one annotation may be given bare instead of as lists."""
    if isinstance(annotations, (list, tuple)):
        if not isinstance(images, (list, tuple)):
            raise InputError("Give the images as a list, one per annotation.")
        return list(images), list(annotations)
    return [images], [annotations]


def _preview(model: Segmenter, channels: list[list[Any]], request: Callable,
             stop: StopFlag = None) -> Preview | None:
    """The prediction of the plane on screen (None when none is, or when stopped)."""
    where = request()
    if where is None:
        return None
    image_index, plane = where
    try:
        found = predict_plane(model, channels[image_index], tuple(plane), stop=stop)
    except Stopped:  # a new plane's forest takes a while: Stop need not wait for it
        return None
    return Preview(image_index, tuple(plane), np.asarray(found.labels),
                   np.asarray(found.probabilities).max(axis=0))


class _Periodic:
    """A task due every ``interval`` seconds, spaced out further when it is slow so that it
    takes at most ``share`` of the time (validation must not starve training)."""

    def __init__(self, interval: float, share: float, first: float | None = None):
        self.interval, self.share = interval, share
        self.next = time.perf_counter() + (interval if first is None else first)

    def due(self) -> bool:
        return time.perf_counter() >= self.next

    def run(self, task: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = task()
        end = time.perf_counter()
        self.next = end + max(self.interval, (end - start) * (1 - self.share) / self.share)
        return result


class _Clock:
    """The step or time budget: progress in [0, 1], estimated total steps, ETA."""

    def __init__(self, start: float, seconds: float | None, steps: int | None):
        self.start, self.seconds, self.steps = start, seconds, steps
        self.train_start = time.perf_counter()  # after the setup (loading, checks)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def finished(self, step: int) -> bool:
        return (self.steps is not None and step >= self.steps) or (
            self.seconds is not None and self.elapsed() >= self.seconds
        )

    def progress(self, step: int) -> float:
        """Fraction of the budget used, for the learning-rate schedule (setup excluded)."""
        by_steps = step / self.steps if self.steps else 0.0
        by_time = 0.0
        if self.seconds:
            window = max(self.start + self.seconds - self.train_start, 1e-3)
            by_time = (time.perf_counter() - self.train_start) / window
        return min(1.0, max(by_steps, by_time))

    def total_and_eta(self, step: int) -> tuple[int, float]:
        """Estimated total steps and seconds left, from the mean step time so far."""
        per_step = (time.perf_counter() - self.train_start) / max(step, 1)
        left = []
        if self.steps is not None:
            left.append(max(self.steps - step, 0) * per_step)
        if self.seconds is not None:
            left.append(max(self.seconds - self.elapsed(), 0.0))
        eta = min(left)
        total = step + round(eta / max(per_step, 1e-9))
        return (min(total, self.steps) if self.steps is not None else total), eta


class _Session:
    """One call of :func:`train`: the optimiser step, loss, validation and history."""

    def __init__(self, model: Segmenter, data: TrainingData, first_session: bool):
        self.model = model
        self.data = data
        self.first_session = first_session
        self.step = 0
        self.lr = 0.0
        self.last_loss = math.nan
        self.last_val: dict[str, dict[str, float]] | None = None
        self.last_val_by_image: dict[int, float] | None = None
        self.numerics = model.numerics
        weights = _class_weights(data.class_pixels, model.recipe.class_weight_power)
        self.class_weights = torch.tensor(weights, dtype=torch.float32, device=model.device)
        self.val_windows = [(plane.image_index, *window) for plane in data.planes
                            for window in _val_windows(plane, model.multiple)]
        params = list(model.net.parameters())
        if model.optimizer is None or model.optimizer.param_groups[0]["params"] != params:
            model.optimizer = torch.optim.AdamW(params, lr=model.recipe.learning_rate,
                                                weight_decay=model.recipe.weight_decay)
        # Adam's first steps without moment estimates (a new model, or one loaded from a file,
        # which keeps no optimiser state) move every weight by about the full learning rate.
        self.warm_up = first_session or not model.optimizer.state
        self.average = [p.detach().clone() for p in params] if EMA_DECAY else []
        float16 = self.numerics.autocast_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(model.device.type, enabled=float16)
        self.note = data.note
        self.reverted = False
        self.network_recall: dict[str, float] | None = None  # set by finish()
        # A continued model must not end worse on the held-out strokes than it started.
        self.start = None if first_session else ([p.detach().clone() for p in params],
                                                 self._scores())

    def learning_rate(self, progress: float) -> float:
        """Warm-up (without optimiser state), then cosine decay to 5 % over the budget."""
        peak = self.model.recipe.learning_rate
        if not self.first_session:
            peak *= CONTINUE_LR_FRACTION
        warm = min(1.0, (self.step + 1) / WARMUP_STEPS) if self.warm_up else 1.0
        cosine = MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))
        return peak * warm * cosine

    def step_on(self, images: torch.Tensor, labels: torch.Tensor, progress: float,
                soft: torch.Tensor | None = None) -> float:
        """One optimiser step on a batch (``soft``: its soft targets); returns its loss."""
        model, optimizer = self.model, self.model.optimizer
        self.lr = self.learning_rate(progress)
        for group in optimizer.param_groups:
            group["lr"] = self.lr
        if self.numerics.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        model.net.train()
        with self.numerics.autocast(model.device):
            logits = model.net(images)
        loss = self.loss(logits.float(), labels, soft)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        self.step += 1
        self._update_average()
        self.last_loss = float(loss.detach())
        return self.last_loss

    def _update_average(self) -> None:
        """Exponential moving average of the weights (warm-started: early steps count more)."""
        decay = min(EMA_DECAY, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for average, param in zip(self.average, self.model.net.parameters()):
                average.lerp_(param.detach(), 1 - decay)

    def _load(self, weights: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for source, param in zip(weights, self.model.net.parameters()):
                param.copy_(source)

    @contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """The averaged weights in the model for a moment (they are what training returns)."""
        current = [p.detach().clone() for p in self.model.net.parameters()]
        self._load(self.average)
        try:
            yield
        finally:
            self._load(current)

    def finish(self) -> None:
        """Put the averaged weights into the model (less step-to-step noise than the last) and
        score them; a continued model that does worse than its start gets its start back.
        Then the forest's share of predictions is learnt from the weights kept (a Continue
        keeps it, `blend.learn_forest_share`)."""
        if self.step:
            self._load(self.average)
        self.last_val = self._scores()
        if self.start is not None and _worse(self.last_val, self.start[1]):
            self._load(self.start[0])
            self.last_val, self.reverted = self.start[1], True
            self.note = " ".join(filter(None, [self.note, (
                "This round did worse on the held-out strokes than the model it started "
                "from, so that model was kept; paint more strokes where it is wrong.")]))
        share = self.model.config.forest_blend
        self.network_recall = learn_forest_share(self.model, self.data, self.first_session)
        if self.model.config.forest_blend != share:  # scored as predictions will show it
            self.last_val = self._scores()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor,
             soft: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted cross-entropy on painted pixels, plus soft Dice over the painted pixels,
        plus (with ``soft`` targets) cross-entropy to them on the pixels not painted."""
        target = labels - 1  # -1 = not painted
        loss = F.cross_entropy(logits, target, weight=self.class_weights, ignore_index=-1)
        if soft is not None:
            unpainted = (target < 0) & (soft.sum(1) > 0)  # not painted, not padding
            if unpainted.any():
                log_p = F.log_softmax(logits, dim=1)
                soft_ce = -(soft * log_p).sum(1)[unpainted].mean()
                loss = loss + self.model.recipe.forest_weight * soft_ce
        dice_weight = self.model.recipe.dice_weight
        if dice_weight <= 0:
            return loss
        painted = target >= 0
        probs = torch.softmax(logits, dim=1).permute(0, 2, 3, 1)[painted]  # (n, K)
        onehot = F.one_hot(target[painted], logits.shape[1]).float()
        present = onehot.sum(0) > 0
        dice = 2 * (probs * onehot).sum(0) / (probs.sum(0) + onehot.sum(0)).clamp_min(1e-6)
        return loss + dice_weight * (1 - dice[present].mean())

    def validate(self) -> dict[str, dict[str, float]] | None:
        """Per-class scores of the averaged weights on the held-out strokes."""
        with self.averaged_weights():
            self.last_val = self._scores()
        return self.last_val

    def _scores(self) -> dict[str, dict[str, float]] | None:
        """Per-class scores of the model on the held-out strokes (predicted around each);
        sets ``last_val_by_image``."""
        pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # image -> (predicted, truth)
        weight = self.model.config.forest_blend if self.model.forest is not None else 0.0
        for image, data, labels, forest in self.val_windows:
            painted = labels > 0
            probabilities = torch.softmax(self.model.logits(data[None])[0], 0).cpu().numpy()
            if forest is not None and weight > 0:  # scored as predictions show it
                probabilities = blend(probabilities, forest, weight)
            classes = probabilities.argmax(0) + 1
            pairs.setdefault(image, []).append((classes[painted], labels[painted]))
        if not pairs:
            return None
        names = self.model.class_names

        def scores(found: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
            return semantic_scores(*(np.concatenate(part) for part in zip(*found)), names)

        self.last_val_by_image = {image: round(_balanced_accuracy(scores(found)), 4)
                                  for image, found in pairs.items()}
        return scores([pair for found in pairs.values() for pair in found])

    def event(self, losses, clock: _Clock, val, shown, done: bool) -> TrainEvent:
        total, eta = clock.total_and_eta(self.step)
        return TrainEvent(
            step=self.step,
            total_steps=self.step if done else total,
            loss=float(np.mean(losses)) if losses else self.last_loss,
            lr=self.lr,
            elapsed=clock.elapsed(),
            eta=0.0 if done else eta,
            val=val,
            val_by_image=self.last_val_by_image if val else None,
            preview=shown,
            done=done,
            note=self.note,
        )

    def record_history(self, seconds: float) -> None:
        self.model.config.history.append({
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "steps": self.step,
            "seconds": round(seconds, 2),
            "final_loss": _json_number(self.last_loss),
            "val": {name: {key: _json_number(value) for key, value in scores.items()}
                    for name, scores in (self.last_val or {}).items()} or None,
            "train_strokes": self.data.train_strokes,
            "val_strokes": self.data.val_strokes,
            "strokes_by_image": {str(i): n for i, n in self.data.strokes_by_image.items()},
            "val_by_image": {str(i): _json_number(v)
                             for i, v in (self.last_val_by_image or {}).items()} or None,
            "kept_start_weights": self.reverted,
            "forest_blend": self.model.config.forest_blend if self.model.forest is not None else None,
            "network_recall": self.network_recall,  # on its training strokes, per class (None
            # when the share was kept)
            "device": str(self.model.device),
            "numerics": self.numerics.describe(),
        })


def _balanced_accuracy(scores: dict[str, dict[str, float]]) -> float:
    return float(np.nanmean([values["recall"] for values in scores.values()]))


def _worse(scores: dict | None, than: dict | None) -> bool:
    """Whether ``scores`` is worse than ``than`` by more than `WORSE_BY` balanced accuracy
    (mean recall over the classes) on the held-out strokes."""
    if not (scores and than):
        return False
    return _balanced_accuracy(scores) < _balanced_accuracy(than) - WORSE_BY


def _class_weights(class_pixels: np.ndarray, power: float) -> np.ndarray:
    """Loss weight per class: rarer painted classes weigh more (the pixel count to the power
    ``-power``), mean 1 over the painted classes, 0 for classes without strokes."""
    painted = class_pixels > 0
    weights = np.zeros(len(class_pixels))
    weights[painted] = class_pixels[painted] ** -float(power)
    weights[painted] = np.clip(weights[painted] / weights[painted].mean(), 0.2, 5.0)
    return weights


def _json_number(value: float) -> float | None:
    """NaN (an undefined score) as None, so the model file holds standard JSON."""
    return None if value is None or math.isnan(value) else value


def _val_windows(plane: Plane, multiple: int
                 ) -> list[tuple[torch.Tensor, np.ndarray, np.ndarray | None]]:
    """Image, validation labels and the forest's probabilities (None without soft targets)
    in a `stroke_window` around each validation stroke; the labels of a window are its own
    stroke's. The forest's are copied now, before self-training rewrites the soft targets.
    Windows may reach into the plane's padding.
    """
    labels = np.pad(plane.val_labels, plane.pad)
    strokes = label(labels > 0, connectivity=2)
    windows = []
    for region in regionprops(strokes):
        ys, xs = stroke_window(region.bbox, strokes.shape, multiple)
        own = np.where(strokes[ys, xs] == region.label, labels[ys, xs], 0)
        forest = (None if plane.soft is None
                  else plane.soft[:, ys, xs].cpu().numpy().astype(np.float32))  # a copy
        windows.append((plane.data[:, ys, xs], own, forest))
    return windows
