//! Divide a feature map into block queries and assemble it back (Figure 3 right of the paper).
//!
//! Fixed orders (**choice**; the paper leaves them open):
//! - block index inside a sample: `q = (i_h * r_w + i_w) * r_c + i_c` (height-major, then width,
//!   then channel group), and row `b * Q + q` of the query matrix for sample `b`;
//! - element order inside a block: `(c, y, x)` with `x` fastest, i.e. the block is the
//!   (C/r_c, H/r_h, W/r_w) sub-tensor flattened in row-major order.

use candle_core::Tensor;

use crate::config::Rates;
use crate::error::Error;

fn dims4(f: &Tensor, what: &'static str) -> candle_core::Result<(usize, usize, usize, usize)> {
    f.dims4().map_err(|_| {
        Error::Shape { what, expected: "(B, C, H, W)".into(), got: f.dims().to_vec() }.into_candle()
    })
}

/// Divides `f` (B, C, H, W) into queries (B*Q, D), Q = r_h r_w r_c, D = (C/r_c)(H/r_h)(W/r_w).
pub fn divide(f: &Tensor, rates: Rates) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = dims4(f, "divide input")?;
    rates.check(c, h, w).map_err(Error::into_candle)?;
    let (cb, hb, wb) = (c / rates.c, h / rates.h, w / rates.w);
    if rates.blocks() == 1 {
        return f.reshape((b, c * h * w));
    }
    // (B, rc, Cb, rh, hb, rw, wb) -> (B, rh, rw, rc, Cb, hb, wb)
    f.reshape(vec![b, rates.c, cb, rates.h, hb, rates.w, wb])?
        .permute(vec![0, 3, 5, 1, 2, 4, 6])?
        .contiguous()?
        .reshape((b * rates.blocks(), cb * hb * wb))
}

/// Inverse of [`divide`]: queries (B*Q, D) back to a (B, C, H, W) map of the given `shape`.
pub fn assemble(
    q: &Tensor,
    rates: Rates,
    shape: (usize, usize, usize, usize),
) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = shape;
    rates.check(c, h, w).map_err(Error::into_candle)?;
    let (cb, hb, wb) = (c / rates.c, h / rates.h, w / rates.w);
    let expected = (b * rates.blocks(), cb * hb * wb);
    if q.dims() != [expected.0, expected.1] {
        return Err(Error::Shape {
            what: "assemble input",
            expected: format!("{expected:?} for feature shape {shape:?} and {rates:?}"),
            got: q.dims().to_vec(),
        }
        .into_candle());
    }
    if rates.blocks() == 1 {
        return q.reshape((b, c, h, w));
    }
    // (B, rh, rw, rc, Cb, hb, wb) -> (B, rc, Cb, rh, hb, rw, wb)
    q.reshape(vec![b, rates.h, rates.w, rates.c, cb, hb, wb])?
        .permute(vec![0, 3, 4, 1, 5, 2, 6])?
        .contiguous()?
        .reshape((b, c, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    #[test]
    fn block_order_is_documented_order() -> candle_core::Result<()> {
        // (1, 2, 4, 4) with rates (2, 2, 2): block q = (ih*2 + iw)*2 + ic holds channel ic,
        // rows 2*ih.., cols 2*iw.. in (c, y, x) order.
        let f = Tensor::arange(0f32, 32.0, &Device::Cpu)?.reshape((1, 2, 4, 4))?;
        let q = divide(&f, Rates::new(2, 2, 2))?;
        assert_eq!(q.dims(), &[8, 4]);
        // ih=1, iw=0, ic=1 -> q=5: channel 1, rows 2..4, cols 0..2
        let want = f.i((0, 1, 2..4, 0..2))?.flatten_all()?;
        let got = q.i(5)?;
        assert_eq!(want.to_vec1::<f32>()?, got.to_vec1::<f32>()?);
        Ok(())
    }
}
