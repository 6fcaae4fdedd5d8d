//! A small builder over the ONNX protobuf messages: nodes with unique value names, constant
//! initializers, attributes, and the ops whose signature changed between opsets.

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

/// An attribute of a node.
pub(crate) enum Attr {
    /// One integer.
    Int(&'static str, i64),
    /// A list of integers.
    Ints(&'static str, Vec<i64>),
    /// One float.
    Float(&'static str, f32),
}

impl Attr {
    fn proto(self) -> pb::AttributeProto {
        let mut a = pb::AttributeProto::default();
        match self {
            Attr::Int(n, v) => {
                a.name = n.into();
                a.r#type = AttributeType::Int as i32;
                a.i = v;
            }
            Attr::Ints(n, v) => {
                a.name = n.into();
                a.r#type = AttributeType::Ints as i32;
                a.ints = v;
            }
            Attr::Float(n, v) => {
                a.name = n.into();
                a.r#type = AttributeType::Float as i32;
                a.f = v;
            }
        }
        a
    }
}

/// The graph under construction.
pub(crate) struct Graph {
    opset: i64,
    pub(crate) nodes: Vec<pb::NodeProto>,
    pub(crate) initializers: Vec<pb::TensorProto>,
    used: std::collections::HashSet<String>,
    /// Constants already emitted under a key (weights shared by two copies of a sub-network).
    pub(crate) shared: std::collections::HashMap<String, Vec<String>>,
}

impl Graph {
    /// An empty graph for `opset`.
    pub(crate) fn new(opset: i64) -> Self {
        Graph {
            opset,
            nodes: Vec::new(),
            initializers: Vec::new(),
            used: Default::default(),
            shared: Default::default(),
        }
    }

    /// `name`, or `name_2`, `name_3`... when taken: every value name is unique.
    pub(crate) fn fresh(&mut self, name: &str) -> String {
        let mut n = name.to_string();
        let mut k = 2;
        while !self.used.insert(n.clone()) {
            n = format!("{name}_{k}");
            k += 1;
        }
        n
    }

    /// Reserves a name given from outside (graph inputs and outputs).
    pub(crate) fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// Adds a node with one output named after `name`; returns the output's name.
    pub(crate) fn op(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        let out = self.fresh(name);
        self.op_into(op, &out, inputs, attrs);
        out
    }

    /// Adds a node writing to the given (already reserved) output name.
    pub(crate) fn op_into(&mut self, op: &str, out: &str, inputs: &[&str], attrs: Vec<Attr>) {
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name: out.to_string(),
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(Attr::proto).collect(),
            ..Default::default()
        });
    }

    /// A float32 constant of shape `dims` (row-major `data`).
    pub(crate) fn f32s(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(name);
        self.initializers.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// A float32 scalar constant.
    pub(crate) fn scalar(&mut self, name: &str, v: f32) -> String {
        self.f32s(name, &[], &[v])
    }

    /// An int64 vector constant (shapes, axes).
    pub(crate) fn i64s(&mut self, name: &str, data: &[i64]) -> String {
        let name = self.fresh(name);
        self.initializers.push(pb::TensorProto {
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// `Reshape(x, shape)` (`-1` for the batch dimension).
    pub(crate) fn reshape(&mut self, name: &str, x: &str, shape: &[i64]) -> String {
        let s = self.i64s(&format!("{name}.shape"), shape);
        self.op("Reshape", name, &[x, &s], vec![])
    }

    /// `Transpose(x, perm)`.
    pub(crate) fn transpose(&mut self, name: &str, x: &str, perm: &[i64]) -> String {
        self.op("Transpose", name, &[x], vec![Attr::Ints("perm", perm.to_vec())])
    }

    /// A reduction (`ReduceSum`, `ReduceMean`) over `axes`: `axes` moved from an attribute to an
    /// input in opset 13 for ReduceSum and in opset 18 for the others.
    pub(crate) fn reduce(
        &mut self,
        op: &str,
        name: &str,
        x: &str,
        axes: &[i64],
        keepdims: bool,
    ) -> String {
        let axes_as_input = if op == "ReduceSum" { self.opset >= 13 } else { self.opset >= 18 };
        let keep = Attr::Int("keepdims", keepdims as i64);
        if axes_as_input {
            let a = self.i64s(&format!("{name}.axes"), axes);
            self.op(op, name, &[x, &a], vec![keep])
        } else {
            self.op(op, name, &[x], vec![Attr::Ints("axes", axes.to_vec()), keep])
        }
    }
}

/// A float32 tensor value info of the given dims (`None` = the symbolic batch dimension).
pub(crate) fn value_info(name: &str, dims: &[Option<usize>], doc: &str) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Some(n) => Value::DimValue(*n as i64),
                None => Value::DimParam("batch".into()),
            }),
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
        doc_string: doc.to_string(),
    }
}
