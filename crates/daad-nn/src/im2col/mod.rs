//! CPU f32 building blocks of the convolution ops: im2col, col2im, a `gemm` wrapper and the three
//! batched kernels every convolution and transposed convolution (and their gradients) reduce to.
//!
//! Vocabulary: the *image* side is `(C, H, W)`; the *column* side is `(M, OH, OW)`, related by a
//! convolution of kernel `k`, stride, padding and dilation from image to columns. A weight matrix
//! `W (M, C*k*k)` (row-major, i.e. a `(M, C, k, k)` tensor) maps one to the other:
//! - [`im2col_gemm`]: columns = W @ im2col(image)        (conv2d forward, conv-transpose input grad)
//! - [`gemm_col2im`]: image = col2im(W^T @ columns)      (conv2d input grad, conv-transpose forward)
//! - [`weight_grad`]: dW = sum_b columns_b @ im2col(image_b)^T   (both layers' weight grad)
//!
//! Files: [`geom`] (the shapes), [`patches`] (im2col / col2im copies), [`matmul`] (the `gemm`
//! call and how threads are spread), [`kernels`] (the three kernels, one batch item at a time),
//! [`batched`] (the same kernels with the batch folded into one product, for small maps) and
//! [`reduce`] (sums).

mod batched;
mod geom;
mod kernels;
mod matmul;
mod patches;
mod reduce;

pub(crate) use geom::{ConvParams, Geom};
pub(crate) use kernels::{gemm_col2im, im2col_gemm, weight_grad};
pub(crate) use reduce::{channel_sum, lane_sum};
