//! The addressing options of the ablation: dot-product similarity and the temperature agree across
//! backends (a non-cosine similarity runs the reference on every backend), and configs written
//! before `similarity` existed load as cosine.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use daad_memory::{reference, Backend, BlockMemory, MemoryConfig, Rates, Shrink, Similarity};

fn memory(cfg: &MemoryConfig, vm: &VarMap) -> anyhow::Result<BlockMemory> {
    let vb = VarBuilder::from_varmap(vm, DType::F32, &Device::Cpu);
    Ok(BlockMemory::new(4, 8, 8, cfg, vb.pp("m"))?)
}

#[test]
fn dot_similarity_agrees_across_backends_and_differs_from_cosine() -> anyhow::Result<()> {
    let f = Tensor::randn(0f32, 1.0, (2, 4, 8, 8), &Device::Cpu)?;
    let vm = VarMap::new();
    let base = MemoryConfig {
        n_items: 10,
        rates: Rates::new(2, 2, 1),
        similarity: Similarity::Dot,
        temperature: 0.5,
        ..Default::default()
    };
    let reference_out =
        memory(&MemoryConfig { backend: Backend::Reference, ..base.clone() }, &vm)?.forward(&f)?;
    let fused_out =
        memory(&MemoryConfig { backend: Backend::FusedCpu, ..base.clone() }, &vm)?.forward(&f)?;
    let diff = (&reference_out - &fused_out)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    let cosine = memory(&MemoryConfig { similarity: Similarity::Cosine, ..base.clone() }, &vm)?
        .forward(&f)?;
    let diff = (&reference_out - &cosine)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff > 1e-4, "dot and cosine gave the same output");
    Ok(())
}

#[test]
fn dot_addressing_by_hand() -> anyhow::Result<()> {
    // q = (1, 0), items (2, 0) and (0, 1): dot scores 2 and 0, softmax (e^2, 1)/(e^2 + 1).
    let q = Tensor::new(&[[1f32, 0.]], &Device::Cpu)?;
    let bank = Tensor::new(&[[2f32, 0.], [0., 1.]], &Device::Cpu)?;
    let p = reference::addressing_with(&q, &bank, 1.0, Similarity::Dot)?.to_vec2::<f32>()?;
    let e2 = 2f32.exp();
    assert!((p[0][0] - e2 / (e2 + 1.0)).abs() < 1e-6);
    // Cosine: scores 1 and 0.
    let p = reference::addressing_with(&q, &bank, 1.0, Similarity::Cosine)?.to_vec2::<f32>()?;
    let e1 = 1f32.exp();
    assert!((p[0][0] - e1 / (e1 + 1.0)).abs() < 1e-6);
    let (_, w) = reference::sparse_attention_with(&q, &bank, Shrink::Drop, 1.0, Similarity::Dot)?;
    assert_eq!(w.to_vec2::<f32>()?[0][1], 0.0, "1/(e^2+1) < 1/2 is dropped");
    Ok(())
}

#[test]
fn configs_without_similarity_load_as_cosine() -> anyhow::Result<()> {
    let mut v = serde_json::to_value(MemoryConfig::default())?;
    v.as_object_mut().unwrap().remove("similarity");
    let cfg: MemoryConfig = serde_json::from_value(v)?;
    assert_eq!(cfg.similarity, Similarity::Cosine);
    Ok(())
}
