/// Output-size arithmetic of sliding windows (convolution and pooling), per axis.
/// All in int64 so that absurd sizes are detected, not wrapped.
module CnnDsl.Dsl.Shapes

/// A dilated kernel spans d(k-1)+1 input cells.
let effectiveKernel (k: int64) (d: int64) = d * (k - 1L) + 1L

let private floorDiv (a: int64) (b: int64) = if a >= 0L then a / b else -((-a + b - 1L) / b)

/// The seeds' formula: out = floor((n + 2p - k) / s) + 1, with the padding given as its
/// total over both sides (p before + p after) so that `same`'s uneven split fits too.
let outputSize (n: int64) (padTotal: int64) (kEff: int64) (s: int64) = floorDiv (n + padTotal - kEff) s + 1L

/// How many input rows (or columns) past the last window are never covered:
/// (n + 2p - k) mod s, the seeds' "integer output" check.
let uncovered (n: int64) (padTotal: int64) (kEff: int64) (s: int64) =
    let span = n + padTotal - kEff
    if span < 0L then 0L else span % s

/// TensorFlow's `same`: out = ceil(n / s); the total padding is what that output needs,
/// split with the extra cell after (bottom/right). Returns (before, after).
let samePadding (n: int64) (kEff: int64) (s: int64) =
    let out = (n + s - 1L) / s
    let total = max 0L ((out - 1L) * s + kEff - n)
    let before = total / 2L
    before, total - before
