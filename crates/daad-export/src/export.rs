//! Assembles the ONNX model: graph, inputs and outputs, metadata; writes the file.

use std::path::{Path, PathBuf};

use daad_eval::Calibration;
use daad_model::DaadModel;
use prost::Message;
use tract_onnx::pb;

use crate::error::{Error, Result};
use crate::graph::{value_info, Graph};
use crate::network::{generator, heads, Weights};
use crate::options::{Batch, ExportOptions};
use crate::run_info::{self, ScoreSpec};

/// Name of the graph input: images (B, 3, S, S), RGB, NCHW, float32 in [-1, 1].
pub const INPUT: &str = "image";
/// Prefix of the metadata keys this exporter writes.
pub const META_PREFIX: &str = "daad.";

/// How daad preprocesses an image file (stated in the metadata and the docs).
pub const PREPROCESS: &str = "decode to RGB (grey copied to 3 channels, alpha dropped); resize to \
SxS with a triangle (bilinear, area-aware when shrinking) filter, aspect ratio not kept; x = \
pixel / 127.5 - 1 (8-bit) or 2 v - 1 (deeper, v in [0, 1]); layout NCHW";

/// An exported model in memory.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The serialised ModelProto (what goes into the .onnx file).
    pub bytes: Vec<u8>,
    /// What it contains.
    pub info: ModelInfo,
}

/// What an exported model contains.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// The variant's name.
    pub variant: String,
    /// Input side S in pixels.
    pub image_size: usize,
    /// Opset of the default domain.
    pub opset: i64,
    /// ONNX IR version.
    pub ir_version: i64,
    /// The batch dimension.
    pub batch: Batch,
    /// Output names, in order.
    pub outputs: Vec<String>,
    /// Verdict threshold on `score` (None: the run has none).
    pub threshold: Option<f64>,
    /// Number of nodes in the graph.
    pub nodes: usize,
    /// The metadata_props written (key, value).
    pub metadata: Vec<(String, String)>,
}

/// What [`export_onnx`] wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    /// The .onnx file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// What it contains.
    pub info: ModelInfo,
}

impl ExportReport {
    /// A few lines for people: file, size, input, outputs, threshold.
    pub fn summary(&self) -> String {
        let i = &self.info;
        let b = match i.batch {
            Batch::Dynamic => "batch".to_string(),
            Batch::Fixed(n) => n.to_string(),
        };
        format!(
            "wrote {} ({:.1} MB, {} nodes, opset {})\n  input  {INPUT}: float32 ({b}, 3, {s}, {s}), RGB, NCHW, in [-1, 1]\n  \
             outputs {}\n  variant {}, threshold {} (anomalous when score >= threshold)",
            self.path.display(),
            self.bytes as f64 / 1e6,
            i.nodes,
            i.opset,
            i.outputs.join(", "),
            i.variant,
            i.threshold.map_or("none".to_string(), |t| format!("{t:.6}")),
            s = i.image_size,
        )
    }
}

/// Exports the run in `run` as one ONNX file at `out` (written atomically).
pub fn export_onnx(run: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let info = run_info::open(run)?;
    let model = build(&info.model, &info.score, &info.trained_with, opts)?;
    daad_data::io::write_atomic(out, &model.bytes)
        .map_err(|source| Error::Io { path: out.to_path_buf(), source })?;
    tracing::info!("exported {} to {}", info.path.display(), out.display());
    Ok(ExportReport { path: out.to_path_buf(), bytes: model.bytes.len(), info: model.info })
}

/// Exports an in-memory model with `calibration` (e.g. in tests, or before a run folder exists).
pub fn export_model(
    model: &DaadModel,
    calibration: &Calibration,
    opts: &ExportOptions,
) -> Result<OnnxModel> {
    let spec = run_info::score_spec(calibration, model.has_discriminator())?;
    build(model, &spec, env!("CARGO_PKG_VERSION"), opts)
}

fn build(
    model: &DaadModel,
    spec: &ScoreSpec,
    trained_with: &str,
    opts: &ExportOptions,
) -> Result<OnnxModel> {
    opts.validate()?;
    let cfg = model.config();
    let s = cfg.image_size;
    let weights = Weights::of(model)?;
    let mut g = Graph::new(opts.opset);
    g.reserve(INPUT);
    let names = ["score", "r", "l", "map", "reconstruction"];
    for n in names {
        g.reserve(n);
    }
    let x_hat = generator(&mut g, &weights, cfg, INPUT)?;
    let map_cfg = run_info::map_config();
    let h =
        heads(&mut g, &weights, model, spec, INPUT, &x_hat, opts.outputs.map.then_some(&map_cfg))?;

    let b = match opts.batch {
        Batch::Dynamic => None,
        Batch::Fixed(n) => Some(n),
    };
    let mut outputs = Vec::new();
    let mut out = |g: &mut Graph, name: &str, value: &str, dims: Vec<Option<usize>>, doc: &str| {
        g.op_into("Identity", name, &[value], vec![]);
        outputs.push(value_info(name, &dims, doc));
    };
    out(
        &mut g,
        "score",
        &h.score,
        vec![b],
        "calibrated anomaly score per image; anomalous when >= metadata daad.threshold",
    );
    out(&mut g, "r", &h.r, vec![b], "raw reconstruction error R(x): mean of (x - x_hat)^2");
    if let Some(l) = &h.l {
        out(&mut g, "l", l, vec![b], "raw alignment error L(x): mean of (f_D(x) - f_D(x_hat))^2");
    }
    if let Some(m) = &h.map {
        out(
            &mut g,
            "map",
            m,
            vec![b, Some(1), Some(s), Some(s)],
            "smoothed anomaly map at the model's size; resize bilinearly to the image's size",
        );
    }
    if opts.outputs.reconstruction {
        out(
            &mut g,
            "reconstruction",
            &x_hat,
            vec![b, Some(cfg.in_channels), Some(s), Some(s)],
            "the reconstruction x_hat in (-1, 1), NCHW RGB",
        );
    }
    let output_names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();

    let metadata = metadata(model, spec, trained_with, opts, h.sigma, &output_names);
    let nodes = g.nodes.len();
    let graph = pb::GraphProto {
        node: g.nodes,
        name: format!("daad_{}", cfg.variant.name().replace('+', "_plus").replace('-', "_")),
        initializer: g.initializers,
        input: vec![value_info(
            INPUT,
            &[b, Some(cfg.in_channels), Some(s), Some(s)],
            "RGB images, NCHW, float32 in [-1, 1] (see metadata daad.preprocess)",
        )],
        output: outputs,
        doc_string: format!("daad {} detector", cfg.variant),
        ..Default::default()
    };
    let proto = pb::ModelProto {
        ir_version: opts.ir_version(),
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: opts.opset }],
        producer_name: "daad".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: "daad".into(),
        model_version: 1,
        doc_string: "Divide-and-Assemble anomaly detector (Hou et al., ICCV 2021) exported by daad"
            .into(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto { key: k.clone(), value: v.clone() })
            .collect(),
        ..Default::default()
    };
    Ok(OnnxModel {
        bytes: proto.encode_to_vec(),
        info: ModelInfo {
            variant: cfg.variant.name().to_string(),
            image_size: s,
            opset: opts.opset,
            ir_version: opts.ir_version(),
            batch: opts.batch,
            outputs: output_names,
            threshold: spec.threshold,
            nodes,
            metadata,
        },
    })
}

/// The metadata_props: everything a consumer needs to feed the model and read its score.
fn metadata(
    model: &DaadModel,
    spec: &ScoreSpec,
    trained_with: &str,
    opts: &ExportOptions,
    sigma: f32,
    outputs: &[String],
) -> Vec<(String, String)> {
    let cfg = model.config();
    let s = cfg.image_size;
    let scale = |sc: &run_info::Scale| serde_json::json!({"min": sc.min, "div": sc.div});
    let scaling = serde_json::json!({
        "formula": "r' = (r - r.min) / r.div, l' = (l - l.min) / l.div; score_kind fused: gamma * r' + (1 - gamma) * l' (r' alone without l); r: r'; l: l'",
        "r": scale(&spec.r),
        "l": spec.l.as_ref().map(scale),
        "gamma": spec.gamma,
    });
    let kv = [
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        ("trained_with", trained_with.to_string()),
        ("variant", cfg.variant.name().to_string()),
        ("image_size", s.to_string()),
        ("input", format!("{INPUT}: float32 (batch, 3, {s}, {s})")),
        ("layout", "NCHW".to_string()),
        ("channels", "RGB".to_string()),
        ("range", "[-1, 1]".to_string()),
        ("preprocess", PREPROCESS.replace("SxS", &format!("{s}x{s}"))),
        ("score_kind", spec.kind.name().to_string()),
        ("threshold", spec.threshold.map_or("none".to_string(), |t| format!("{t:?}"))),
        ("verdict", "anomalous when score >= threshold".to_string()),
        ("scaling", scaling.to_string()),
        ("calibration", spec.calibration_json.clone()),
        ("outputs", outputs.join(",")),
        (
            "map",
            format!(
                "channel mean of (x - x_hat)^2, Gaussian sigma {sigma} px (truncate 4, scipy 'reflect' borders) at {s}x{s}; \
                 daad resizes it bilinearly (half-pixel centres) to the image's size"
            ),
        ),
        ("batch", opts.batch.to_string()),
        ("batchnorm", "folded into the convolutions (running statistics)".to_string()),
    ];
    kv.into_iter().map(|(k, v)| (format!("{META_PREFIX}{k}"), v)).collect()
}
