//! divide / assemble: identity for all rates of the issue, fixed order, typed errors.

mod common;

use candle_core::DType;
use daad_memory::{assemble, divide, Error, Rates};

#[test]
fn divide_then_assemble_is_identity_for_all_rates() -> anyhow::Result<()> {
    // 16 x 32 map: every r in {1,2,4,8,16} divides both; C = 8 takes every r_c in {1,2,4}.
    let f = common::randn(1, &[2, 8, 16, 32], DType::F32)?;
    for rh in [1, 2, 4, 8, 16] {
        for rw in [1, 2, 4, 8, 16] {
            for rc in [1, 2, 4] {
                let rates = Rates::new(rh, rw, rc);
                let q = divide(&f, rates)?;
                assert_eq!(q.dims(), &[2 * rh * rw * rc, (8 / rc) * (16 / rh) * (32 / rw)]);
                let back = assemble(&q, rates, (2, 8, 16, 32))?;
                let diff = (&back - &f)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                assert_eq!(diff, 0.0, "rates {rates:?}");
            }
        }
    }
    Ok(())
}

#[test]
fn assemble_then_divide_is_identity() -> anyhow::Result<()> {
    let rates = Rates::new(4, 2, 2);
    let q = common::randn(2, &[3 * 16, 3 * 5 * 7], DType::F64)?;
    let f = assemble(&q, rates, (3, 6, 20, 14))?;
    let back = divide(&f, rates)?;
    assert_eq!(back.to_vec2::<f64>()?, q.to_vec2::<f64>()?);
    Ok(())
}

#[test]
fn rates_that_do_not_divide_are_a_typed_error_naming_the_shapes() -> anyhow::Result<()> {
    let rates = Rates::new(8, 8, 1);
    let err = rates.check(64, 12, 16).unwrap_err();
    assert!(matches!(err, Error::RatesDoNotDivide { height: 12, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("C=64, H=12, W=16") && msg.contains("r_h=8"), "{msg}");

    let f = common::randn(3, &[1, 6, 12, 12], DType::F32)?;
    let msg = divide(&f, Rates::new(4, 4, 4)).unwrap_err().to_string();
    assert!(msg.contains("C=6, H=12, W=12") && msg.contains("r_c=4"), "{msg}");
    let msg = assemble(&f.flatten_all()?.reshape((9, 96))?, Rates::new(5, 3, 1), (1, 6, 12, 12))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("r_h=5"), "{msg}");
    Ok(())
}
