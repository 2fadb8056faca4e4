"""A transposed convolution as a sub-pixel convolution (pipeline 6): a stride-1 `conv2d` on the
input as it is, then depth-to-space.

Why: TVM 0.27 legalizes `conv2d_transpose` as a convolution over the input dilated with zeros
(topi `conv2d_transpose_nchw`), so at stride 2 three multiply-adds in four are by an inserted zero,
and the dilation's `if_then_else` sits inside the reduction where no schedule vectorizes it. dcgan's
three big transposed convolutions ran at 3-9 useful GFLOP/s after tuning (1,320 ms against
PyTorch's 61 ms on Zen 3, results/znver3/figure13/full). The same operator is a plain convolution
with s_h x s_w times the output channels (one group per output phase), which MetaSchedule schedules
like any other (and pipeline >= 2 converts to NHWC).

The algebra (one axis; stride s, padding p, kernel k zero-padded to m x s taps):
    y[o] = sum_{i, j} x[i] w[j]  over  o = i s - p + j
Write o + p = a s + r (0 <= r < s): then j = (a - i) s + r, so with t = m - 1 - (a - i),
    y[a s + r - p] = sum_t x[a - (m - 1) + t] w[(m - 1 - t) s + r]
a stride-1 correlation of x (out-of-range taps are zero padding) with the kernel of phase r,
w_r[t] = w[(m - 1 - t) s + r]. The convolution computes every needed a at once, its output channels
ordered (r_h, r_w, c_out); a reshape and transpose interleave the phases; a slice drops the rows
before o = 0 and after the last.

Only a transposed convolution whose kernel is a constant (the weights are bound at extraction:
`keep_params_as_input=False`) with groups 1, dilation 1 and NCHW/IOHW layouts is rewritten (the
torch frontend's); others stay as they are.
"""

from __future__ import annotations

import numpy as np

from tlm_core.ir.relax_rewrite import out_dtype, rewrite_calls, static_shape


def phase_kernel(w: np.ndarray, strides: tuple[int, int]) -> np.ndarray:
    """The IOHW transposed-convolution kernel `w` as the OIHW kernel of its sub-pixel convolution:
    shape (s_h s_w c_out, c_in, m_h, m_w), output channel (r_h, r_w, c_out) in that order."""
    sh, sw = strides
    ci, co, kh, kw = w.shape
    mh, mw = -(-kh // sh), -(-kw // sw)
    padded = np.zeros((ci, co, mh * sh, mw * sw), w.dtype)
    padded[:, :, :kh, :kw] = w
    # tap j s + r of the kernel is tap t = m - 1 - j of phase r
    taps = padded.reshape(ci, co, mh, sh, mw, sw)[:, :, ::-1, :, ::-1, :]
    return np.ascontiguousarray(taps.transpose(3, 5, 1, 0, 2, 4).reshape(sh * sw * co, ci, mh, mw))


def _axis(size_in: int, size_out: int, s: int, p: int, m: int) -> tuple[int, int, int, int] | None:
    """(pad before, pad after, phase rows, crop offset) along one axis, or None where the input would
    have to be cropped (padding of a kernel's size or more: no torch model has it)."""
    first, last = p // s, (p + size_out - 1) // s  # the a of the first and last output row
    before, after = m - 1 - first, last - (size_in - 1)
    if before < 0:
        return None
    return before, max(0, after), last - first + 1, p - s * first


def rewrite(mod):
    """`mod` with every eligible `relax.nn.conv2d_transpose` a sub-pixel `conv2d` (see the module)."""
    return rewrite_calls(mod, "relax.nn.conv2d_transpose", _subpixel)


def _subpixel(mutator, call):
    """The sub-pixel form of one transposed convolution, or None where it is not eligible."""
    import tvm
    from tvm import relax

    a = call.attrs
    data, weight = call.args
    if (not isinstance(weight, tvm.ir.expr.Constant) or int(a.groups) != 1
            or [int(d) for d in a.dilation] != [1, 1] or a.data_layout != "NCHW"
            or a.kernel_layout != "IOHW" or a.out_layout != "NCHW"):
        return None
    shapes = static_shape(data), static_shape(call)
    if None in shapes:  # symbolic shapes: left as they are
        return None
    (n, _, h, w_), (_, co, oh, ow) = shapes
    sh, sw = (int(s) for s in a.strides)
    top, left, _, _ = (int(p) for p in a.padding)
    kernel = phase_kernel(weight.value.numpy(), (sh, sw))
    mh, mw = kernel.shape[2:]
    rows, cols = _axis(h, oh, sh, top, mh), _axis(w_, ow, sw, left, mw)
    if rows is None or cols is None:
        return None
    (pt, pb, ah, off_h), (pl, pr, aw, off_w) = rows, cols
    dtype = out_dtype(a)
    bb = mutator.builder_
    z = bb.emit(relax.op.nn.conv2d(data, relax.const(kernel), padding=(pt, pl, pb, pr), out_dtype=dtype))
    if h + pt + pb - mh + 1 > ah or w_ + pl + pr - mw + 1 > aw:  # rows past the last the output needs
        z = bb.emit(relax.op.strided_slice(z, axes=[2, 3], begin=[0, 0], end=[ah, aw]))
    z = bb.emit(relax.op.reshape(z, (n, sh, sw, co, ah, aw)))
    z = bb.emit(relax.op.permute_dims(z, [0, 3, 4, 1, 5, 2]))
    z = bb.emit(relax.op.reshape(z, (n, co, ah * sh, aw * sw)))
    return relax.op.strided_slice(z, axes=[2, 3], begin=[off_h, off_w], end=[off_h + oh, off_w + ow])
