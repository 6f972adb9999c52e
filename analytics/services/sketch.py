"""A mergeable quantile sketch with relative accuracy, stored compactly for the rollup tables.

The bucket mapping is ddsketch's ``LogarithmicMapping``: a value v > 0 falls in
bin ``ceil(log_gamma(v))`` and is represented by a value within ``RELATIVE_ACCURACY``
of every value in that bin. Bins are counted with numpy so that building a sketch
from tens of thousands of values, or merging hundreds of sketches, takes
milliseconds; the tests check the keys against ddsketch's own mapping.

A quantile interpolates linearly between the estimates of the two closest ranks,
like the exact answer (numpy's default), so each estimate being within 1% of its
ranked value keeps the interpolation within 1% of the exact percentile.

Stored blob (little-endian)::

    version u8, relative accuracy f64, zero count f64, positive side, negative side
    side: layout u8 (0 sparse, 1 dense), first key i32, entries u32, then
          sparse: keys i32[entries] and counts u32[entries]; dense: counts u32[entries] from the first key

A blob of another version or accuracy is refused with ``IncompatibleSketchError``: its keys
would decode to wrong values. Legacy blobs, written before the version byte existed, are
the same without the first two fields; they were all written with accuracy 0.0095. Their
first byte is the lowest byte of an integer-valued float64 below 2**45, so it is always 0,
which no versioned blob starts with: they are read as version 0 at ``LEGACY_ACCURACY``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from ddsketch.mapping import LogarithmicMapping

# A little under 1% so that float rounding at a bin's edge never crosses the promised 1%.
RELATIVE_ACCURACY = 0.0095
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
FORMAT_VERSION = 1
LEGACY_VERSION, LEGACY_ACCURACY = 0, 0.0095  # headerless blobs (see the module docstring)


def log2_multiplier(relative_accuracy: float) -> float:
    """1 / log2(gamma), so that key = ceil(log2(v) * multiplier).

    Computed from gamma - 1 = 2a / (1 - a) with log1p, in the order ddsketch's
    LogarithmicMapping computes it, so that the keys agree with its ``key()`` to the last bit
    (1 / log2(gamma) rounds differently for some accuracies).
    """
    return 1 / math.log1p(2 * relative_accuracy / (1 - relative_accuracy)) * math.log(2)


_MULTIPLIER = log2_multiplier(MAPPING.relative_accuracy)
_REPRESENTATIVE = 2.0 / (1 + MAPPING.gamma)
_FORMAT = struct.Struct("<Bd")  # format version, relative accuracy
_ZERO = struct.Struct("<d")  # the zero count
_SIDE = struct.Struct("<BiI")  # layout (0 sparse, 1 dense), first key, number of entries
SPARSE, DENSE = 0, 1


class IncompatibleSketchError(ValueError):
    """A stored sketch blob of another format version or relative accuracy than this code's."""


def _encode_side(keys: np.ndarray, counts: np.ndarray) -> bytes:
    if keys.size == 0:
        return _SIDE.pack(SPARSE, 0, 0)
    order = np.argsort(keys)
    keys, counts = keys[order], np.rint(counts[order]).astype("<u4")
    span = int(keys[-1]) - int(keys[0]) + 1
    if span * 4 <= keys.size * 8:
        dense = np.zeros(span, dtype="<u4")
        dense[keys - keys[0]] = counts
        return _SIDE.pack(DENSE, int(keys[0]), span) + dense.tobytes()
    return _SIDE.pack(SPARSE, 0, keys.size) + keys.astype("<i4").tobytes() + counts.tobytes()


def _decode_side(blob: bytes, offset: int) -> tuple[np.ndarray, np.ndarray, int]:
    layout, first, size = _SIDE.unpack_from(blob, offset)
    offset += _SIDE.size
    if layout == DENSE:
        dense = np.frombuffer(blob, "<u4", size, offset).astype(np.float64)
        used = np.flatnonzero(dense)
        return (used + first).astype(np.int32), dense[used], offset + 4 * size
    keys = np.frombuffer(blob, "<i4", size, offset)
    counts = np.frombuffer(blob, "<u4", size, offset + 4 * size).astype(np.float64)
    return keys, counts, offset + 8 * size


def _body_offset(blob: bytes) -> int:
    """Where a stored blob's zero count starts, after checking its version and accuracy (module docstring)."""
    if blob[0] == LEGACY_VERSION:
        version, accuracy, offset = LEGACY_VERSION, LEGACY_ACCURACY, 0
    else:
        (version, accuracy), offset = _FORMAT.unpack_from(blob), _FORMAT.size
        if version != FORMAT_VERSION:
            raise IncompatibleSketchError(f"sketch blob has format version {version}; this code reads version "
                                          f"{FORMAT_VERSION} and legacy (headerless) blobs")
    if accuracy != RELATIVE_ACCURACY:
        raise IncompatibleSketchError(f"sketch blob was built with relative accuracy {accuracy!r}, sketches here "
                                      f"use {RELATIVE_ACCURACY!r}: its keys would decode to wrong values")
    return offset


@contextmanager
def _cut_short(blob: bytes) -> Iterator[None]:
    """A blob shorter than its own header says is a ValueError, like one longer (``_check_length``)."""
    try:
        yield
    except struct.error as error:
        raise ValueError(f"sketch blob of {len(blob)} bytes is cut short: {error}") from error


def _check_length(blob: bytes, offset: int) -> None:
    if offset != len(blob):
        raise ValueError(f"sketch blob of {len(blob)} bytes holds {offset} bytes of sketch")


def keys_of(magnitudes: np.ndarray) -> np.ndarray:
    return np.ceil(np.log2(magnitudes) * _MULTIPLIER).astype(np.int32)


def values_of(keys: np.ndarray) -> np.ndarray:
    return np.exp2(keys / _MULTIPLIER) * _REPRESENTATIVE


def _count_bins(keys: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys with their total counts (keys are small integers: a bincount over their range)."""
    if keys.size == 0:
        return keys.astype(np.int32), np.zeros(0, dtype=np.float64)
    low = int(keys.min())
    totals = np.bincount(keys - low, weights=counts)
    used = np.flatnonzero(totals)
    return (used + low).astype(np.int32), totals[used].astype(np.float64)


@dataclass
class Sketch:
    positive_keys: np.ndarray
    positive_counts: np.ndarray
    negative_keys: np.ndarray  # keys of |v| for v < 0
    negative_counts: np.ndarray
    zero_count: float = 0.0

    @classmethod
    def empty(cls) -> Sketch:
        nothing = np.zeros(0, dtype=np.int32)
        return cls(nothing, np.zeros(0), nothing, np.zeros(0), 0.0)

    @classmethod
    def from_values(cls, values) -> Sketch:
        values = np.asarray(values, dtype=np.float64)
        tiny = MAPPING.min_possible
        positive, negative = values[values > tiny], -values[values < -tiny]
        zero = float(values.size - positive.size - negative.size)
        return cls(*_count_bins(keys_of(positive)), *_count_bins(keys_of(negative)), zero)

    @property
    def count(self) -> float:
        return float(self.positive_counts.sum() + self.negative_counts.sum() + self.zero_count)

    # --- storage ------------------------------------------------------------------
    # Stored per rollup row, so size matters: each side (positive, negative) is written dense
    # (first key + a count per bin) or sparse (key and count per used bin), whichever is smaller,
    # with integer counts.

    def to_bytes(self) -> bytes:
        parts = [_FORMAT.pack(FORMAT_VERSION, RELATIVE_ACCURACY), _ZERO.pack(self.zero_count)]
        for keys, counts in ((self.positive_keys, self.positive_counts), (self.negative_keys, self.negative_counts)):
            parts.append(_encode_side(keys, counts))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes | memoryview) -> Sketch:
        """Decode a stored blob; raises ``IncompatibleSketchError`` for another version or accuracy."""
        blob = bytes(blob)
        with _cut_short(blob):
            offset = _body_offset(blob)
            (zero,) = _ZERO.unpack_from(blob, offset)
            positive_keys, positive_counts, offset = _decode_side(blob, offset + _ZERO.size)
            negative_keys, negative_counts, offset = _decode_side(blob, offset)
        _check_length(blob, offset)
        return cls(positive_keys, positive_counts, negative_keys, negative_counts, zero)

    @classmethod
    def merge_blobs(cls, blobs) -> Sketch:
        """The merge of stored blobs, as ``merge(from_bytes(b) for b in blobs)`` but decoded together.

        A month of a series' rollup rows is thousands of blobs; decoding each into its own arrays cost more
        than the query that read them. Here each blob adds slices of its bytes to one list per side, and one
        bincount per side merges them all (a dense side's zero counts add nothing).
        """
        sides: tuple[tuple[list, list], tuple[list, list]] = (([], []), ([], []))
        zero = 0.0
        blob = b""
        current_header = _FORMAT.pack(FORMAT_VERSION, RELATIVE_ACCURACY)
        # One handler for the loop and the usual header compared as bytes: half the time a blob of a
        # context manager and _body_offset for each.
        try:
            for blob in blobs:
                blob = bytes(blob)
                offset = _FORMAT.size if blob.startswith(current_header) else _body_offset(blob)
                zero += _ZERO.unpack_from(blob, offset)[0]
                offset += _ZERO.size
                for keys, counts in sides:
                    layout, first, size = _SIDE.unpack_from(blob, offset)
                    offset += _SIDE.size
                    if not size:
                        continue
                    if layout == DENSE:
                        keys.append(np.arange(first, first + size, dtype=np.int32))
                        counts.append(np.frombuffer(blob, "<u4", size, offset))
                        offset += 4 * size
                    else:
                        keys.append(np.frombuffer(blob, "<i4", size, offset))
                        counts.append(np.frombuffer(blob, "<u4", size, offset + 4 * size))
                        offset += 8 * size
                _check_length(blob, offset)
        except struct.error as error:
            raise ValueError(f"sketch blob of {len(blob)} bytes is cut short: {error}") from error
        (positive_keys, positive_counts), (negative_keys, negative_counts) = (
            _count_bins(np.concatenate(keys), np.concatenate(counts).astype(np.float64)) if keys
            else (np.zeros(0, dtype=np.int32), np.zeros(0)) for keys, counts in sides)
        return cls(positive_keys, positive_counts, negative_keys, negative_counts, zero)

    @classmethod
    def merge(cls, sketches) -> Sketch:
        sketches = list(sketches)
        if not sketches:
            return cls.empty()
        if len(sketches) == 1:
            return sketches[0]
        positive = _count_bins(np.concatenate([s.positive_keys for s in sketches]),
                               np.concatenate([s.positive_counts for s in sketches]))
        negative = _count_bins(np.concatenate([s.negative_keys for s in sketches]),
                               np.concatenate([s.negative_counts for s in sketches]))
        return cls(*positive, *negative, sum(s.zero_count for s in sketches))

    # --- answers --------------------------------------------------------------------

    def _ordered(self) -> tuple[np.ndarray, np.ndarray]:
        """Representative values in ascending order with their cumulative counts."""
        order = np.argsort(-self.negative_keys)  # the largest magnitude is the smallest value
        values = np.concatenate([
            -values_of(self.negative_keys[order]), [0.0] if self.zero_count else [],
            values_of(self.positive_keys),
        ])
        counts = np.concatenate([self.negative_counts[order], [self.zero_count] if self.zero_count else [],
                                 self.positive_counts])
        return values, np.cumsum(counts)

    def quantiles(self, fractions, minimum=None, maximum=None) -> list[float | None]:
        """Linear interpolation between the estimates of the closest ranks, clamped to [min, max]."""
        total = self.count
        if total == 0:
            return [None for _ in fractions]
        values, cumulative = self._ordered()
        answers: list[float | None] = []
        for fraction in fractions:
            rank = fraction * (total - 1)
            low_rank = np.floor(rank)
            low, high = (values[np.searchsorted(cumulative, r + 1, side="left")]
                         for r in (low_rank, min(low_rank + 1, total - 1)))
            estimate = float(low + (high - low) * (rank - low_rank))
            if minimum is not None:
                estimate = max(estimate, minimum)
            if maximum is not None:
                estimate = min(estimate, maximum)
            answers.append(estimate)
        return answers


def blobs_for_sorted_groups(values: np.ndarray, starts: np.ndarray) -> list[bytes]:
    """The stored sketch of each group of ``values``, which are sorted ascending within each group.

    Vectorised, because a rollup run builds tens of thousands of small sketches: within a
    sorted group equal bins are contiguous, so every group's bins are run lengths of
    (group, sign, key), and every group's sparse encoding is written into one buffer at
    computed offsets. A busy group whose dense encoding is smaller is re-encoded on its own.
    """
    size, groups = values.size, starts.size
    if size == 0:
        return []
    group_of = np.repeat(np.arange(groups), np.diff(np.append(starts, size)))
    tiny = MAPPING.min_possible
    sign = np.where(values < -tiny, 0, np.where(values > tiny, 2, 1))
    keys = np.zeros(size, dtype=np.int32)
    nonzero = sign != 1
    keys[nonzero] = keys_of(np.abs(values[nonzero]))
    change = np.flatnonzero((np.diff(group_of) != 0) | (np.diff(sign) != 0) | (np.diff(keys) != 0)) + 1
    run_starts = np.concatenate([[0], change])
    run_counts = np.diff(np.append(run_starts, size))
    run_group, run_sign, run_key = group_of[run_starts], sign[run_starts], keys[run_starts]

    zero = np.bincount(run_group[run_sign == 1], weights=run_counts[run_sign == 1], minlength=groups)
    positives = np.bincount(run_group[run_sign == 2], minlength=groups)
    negatives = np.bincount(run_group[run_sign == 0], minlength=groups)
    header_size = _FORMAT.size + _ZERO.size
    lengths = header_size + 2 * _SIDE.size + 8 * (positives + negatives)
    ends = np.cumsum(lengths)
    base = ends - lengths
    buffer = np.zeros(int(ends[-1]), dtype=np.uint8)

    def put(offsets: np.ndarray, data: np.ndarray) -> None:
        raw = np.ascontiguousarray(data).view(np.uint8).reshape(offsets.size, -1)
        buffer[(offsets[:, None] + np.arange(raw.shape[1])).ravel()] = raw.ravel()

    format_bytes = np.frombuffer(_FORMAT.pack(FORMAT_VERSION, RELATIVE_ACCURACY), dtype=np.uint8)
    put(base, np.tile(format_bytes, (groups, 1)))
    put(base + _FORMAT.size, zero.astype("<f8"))
    side_offsets = {2: base + header_size, 0: base + header_size + _SIDE.size + 8 * positives}
    for side, counts_per_group in ((2, positives), (0, negatives)):
        header = side_offsets[side]
        put(header + 5, counts_per_group.astype("<u4"))  # layout byte 0 (sparse) and first key 0 stay zero
        chosen = run_sign == side
        if not chosen.any():
            continue
        owner = run_group[chosen]
        first_of_group = np.searchsorted(owner, owner, side="left")
        index_in_group = np.arange(owner.size) - first_of_group
        data_start = header[owner] + _SIDE.size
        put(data_start + 4 * index_in_group, run_key[chosen].astype("<i4"))
        put(data_start + 4 * counts_per_group[owner] + 4 * index_in_group, run_counts[chosen].astype("<u4"))

    blob = buffer.tobytes()
    blobs = [blob[start:end] for start, end in zip(base.tolist(), ends.tolist(), strict=True)]
    for group in np.flatnonzero(positives + negatives > 64).tolist():
        blobs[group] = Sketch.from_bytes(blobs[group]).to_bytes()  # dense when that is smaller
    return blobs
