"""The stored sketch blob: versioned, carrying its accuracy, and read back only when it means what we think."""

import math
import struct
from datetime import timedelta

import numpy as np
import pytest
from ddsketch.mapping import LogarithmicMapping
from django.db.models import F
from django.utils import timezone

from analytics.models import MetricRollup, RollupState, RollupTier
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services import rollup_reads
from analytics.services import sketch as sketch_module
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.rollups import rollup_metrics
from analytics.services.sketch import (
    FORMAT_VERSION,
    MAPPING,
    RELATIVE_ACCURACY,
    IncompatibleSketchError,
    Sketch,
    blobs_for_sorted_groups,
    keys_of,
    log2_multiplier,
)

HEADER = struct.Struct("<Bd")  # version, relative accuracy: the documented layout, written out independently


def sample_values(seed=3, size=5000):
    rng = np.random.default_rng(seed)
    values = np.round(rng.lognormal(3, 2, size), 3)
    values[:40] = 0.0
    values[40:400] *= -1
    return values


def assert_same_sketch(left: Sketch, right: Sketch):
    assert left.zero_count == right.zero_count
    for side in ("positive", "negative"):
        bins = [dict(zip(getattr(s, f"{side}_keys").tolist(), getattr(s, f"{side}_counts").tolist(), strict=True))
                for s in (left, right)]
        assert bins[0] == bins[1], side


def test_round_trip_keeps_every_bin_and_writes_the_header():
    original = Sketch.from_values(sample_values())
    blob = original.to_bytes()
    assert HEADER.unpack_from(blob) == (FORMAT_VERSION, RELATIVE_ACCURACY)
    decoded = Sketch.from_bytes(blob)
    assert_same_sketch(decoded, original)
    assert decoded.quantiles([0.5, 0.99]) == original.quantiles([0.5, 0.99])
    assert_same_sketch(Sketch.from_bytes(Sketch.empty().to_bytes()), Sketch.empty())


def test_the_vectorised_encoder_writes_the_same_blobs_as_to_bytes():
    rng = np.random.default_rng(11)
    groups = [np.sort(np.round(rng.normal(0, 50, size), 2)) for size in (1, 3, 70, 400, 2)]
    values = np.concatenate(groups)
    starts = np.cumsum([0] + [g.size for g in groups[:-1]])
    for blob, group in zip(blobs_for_sorted_groups(values, starts), groups, strict=True):
        assert HEADER.unpack_from(blob) == (FORMAT_VERSION, RELATIVE_ACCURACY)
        assert_same_sketch(Sketch.from_bytes(blob), Sketch.from_values(group))


def test_merging_stored_blobs_together_equals_decoding_each_and_merging():
    """merge_blobs (the read path over many rollup rows) against from_bytes + merge: dense and sparse sides,
    negative values and zeros, an empty sketch and a legacy (headerless) blob among them."""
    rng = np.random.default_rng(17)
    sketches = [Sketch.from_values(rng.lognormal(5, 0.8, size)) for size in (1, 2, 30, 900)]  # sparse and dense
    sketches += [Sketch.from_values(sample_values(seed=4, size=600)), Sketch.empty(), Sketch.from_values([0.0])]
    blobs = [sketch.to_bytes() for sketch in sketches]
    blobs.append(Sketch.from_values(sample_values(seed=5, size=50)).to_bytes()[HEADER.size:])  # legacy
    expected = Sketch.merge([Sketch.from_bytes(blob) for blob in blobs])
    merged = Sketch.merge_blobs(memoryview(blob) for blob in blobs)
    assert_same_sketch(merged, expected)
    assert merged.quantiles([0.01, 0.5, 0.99]) == expected.quantiles([0.01, 0.5, 0.99])
    assert_same_sketch(Sketch.merge_blobs([]), Sketch.empty())
    with pytest.raises(IncompatibleSketchError):
        Sketch.merge_blobs([blobs[0], HEADER.pack(FORMAT_VERSION, 0.005) + blobs[0][HEADER.size:]])
    with pytest.raises(ValueError):
        Sketch.merge_blobs([blobs[3][:-4]])


def test_another_format_version_is_refused_naming_both_versions():
    body = Sketch.from_values([1.0, 2.0]).to_bytes()[HEADER.size:]
    with pytest.raises(IncompatibleSketchError) as refused:
        Sketch.from_bytes(HEADER.pack(FORMAT_VERSION + 1, RELATIVE_ACCURACY) + body)
    assert f"version {FORMAT_VERSION + 1}" in str(refused.value)
    assert f"version {FORMAT_VERSION}" in str(refused.value)


def test_another_accuracy_is_refused_naming_both_accuracies():
    body = Sketch.from_values([1.0, 2.0]).to_bytes()[HEADER.size:]
    with pytest.raises(IncompatibleSketchError) as refused:
        Sketch.from_bytes(HEADER.pack(FORMAT_VERSION, 0.005) + body)
    assert "0.005" in str(refused.value) and repr(RELATIVE_ACCURACY) in str(refused.value)


def test_a_changed_configured_accuracy_refuses_the_stored_blobs(monkeypatch):
    blob = Sketch.from_values([1.0, 2.0, 3.0]).to_bytes()
    legacy = blob[HEADER.size:]
    monkeypatch.setattr(sketch_module, "RELATIVE_ACCURACY", 0.005)
    for stored in (blob, legacy):
        with pytest.raises(IncompatibleSketchError, match="0.0095"):
            Sketch.from_bytes(stored)


def test_a_legacy_blob_without_header_is_read_as_the_accuracy_it_was_written_with():
    """Before the header, a blob was the zero count (an integer-valued float64, so its first byte is 0)
    followed by the two sides: exactly today's blob without its first nine bytes."""
    original = Sketch.from_values(sample_values())
    legacy = original.to_bytes()[HEADER.size:]
    assert legacy[0] == 0
    assert_same_sketch(Sketch.from_bytes(legacy), original)
    for zero_count in (0.0, 1.0, 255.0, 4_000_000_000.0):
        assert struct.pack("<d", zero_count)[0] == 0


def test_a_truncated_blob_is_refused():
    blob = Sketch.from_values(sample_values()).to_bytes()
    with pytest.raises(ValueError):
        Sketch.from_bytes(blob + b"\x00\x00\x00\x00")
    with pytest.raises(ValueError):
        Sketch.from_bytes(blob[:-4])


@pytest.mark.parametrize("accuracy", [0.0095, 0.01, 0.005, 0.02, 0.001, 0.0333])
def test_the_multiplier_is_ddsketchs_own(accuracy):
    mapping = LogarithmicMapping(accuracy)
    rng = np.random.default_rng(1)
    exponents = np.arange(-3000, 3000, dtype=np.float64)
    edges = mapping.gamma ** exponents
    values = np.concatenate([np.logspace(-9, 12, 20_000), rng.lognormal(3, 3, 20_000), np.arange(1.0, 5001.0),
                             edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)])
    values = values[(values > mapping.min_possible) & (values < mapping.max_possible)]
    multiplier = log2_multiplier(mapping.relative_accuracy)
    # log2 as ddsketch takes it, so that only the multiplier can differ.
    keys = [math.ceil(math.log(value, 2) * multiplier) for value in values.tolist()]
    assert keys == [mapping.key(value) for value in values.tolist()]


def test_the_configured_keys_are_ddsketchs_keys():
    values = np.concatenate([np.logspace(-6, 9, 50_000), np.arange(1.0, 10_001.0)])
    assert keys_of(values).tolist() == [MAPPING.key(value) for value in values.tolist()]


@pytest.mark.django_db
def test_rollup_rows_stored_in_the_legacy_format_still_answer_and_merge(personas):
    """A deployed database keeps its headerless rows: they are read, and merged into new day rows."""
    now = timezone.now()
    rng = np.random.default_rng(8)
    values = np.round(rng.lognormal(4, 0.8, 3000), 3)
    offsets = rng.uniform(3600 * 3, 86400 * 2, values.size)
    ingest_metric_items(personas.org, [MetricItem("legacy", float(v), timestamp=now - timedelta(seconds=float(s)))
                                       for v, s in zip(values, offsets, strict=True)])
    rollup_metrics(now)
    for row in MetricRollup.objects.all():
        row.sketch = bytes(row.sketch)[HEADER.size:]
        row.save(update_fields=["sketch"])
    window = Window(now - timedelta(days=3), now)
    assert rollup_reads.uses_rollups(rollup_reads.Coverage(window.start, window.end, []).plan(window.start, window.end))
    stats = query.statistics("legacy", window, org=personas.org)
    assert stats.count == values.size
    assert stats.p95 == pytest.approx(np.percentile(values, 95), rel=0.01)
    # Day rows built again merge the legacy hour rows, and are written in today's format.
    MetricRollup.objects.filter(tier=RollupTier.DAY).delete()
    RollupState.objects.filter(tier=RollupTier.DAY).update(built_until=F("built_from"))
    rollup_metrics(now)
    day_blobs = list(MetricRollup.objects.filter(tier=RollupTier.DAY).values_list("sketch", flat=True))
    assert day_blobs and all(bytes(blob)[0] == FORMAT_VERSION for blob in day_blobs)


def test_a_changed_configured_accuracy_refuses_the_stored_blobs_when_merged_too(monkeypatch):
    blob = Sketch.from_values([1.0, 2.0, 3.0]).to_bytes()
    monkeypatch.setattr(sketch_module, "RELATIVE_ACCURACY", 0.005)
    with pytest.raises(IncompatibleSketchError, match="0.0095"):
        Sketch.merge_blobs([blob, blob])
