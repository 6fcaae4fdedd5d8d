//! A deterministic synthetic defect dataset in MVTec AD layout: the project's test fixture, its
//! demo data, and a benchmark that can tell variants apart.
//!
//! Two generators with different statistics, chosen by category name:
//! - **classic** ([`SYNTH_CATEGORIES`]): two textures (`weave`, a woven fabric; `grain`, a wood
//!   grain) and two objects (`cap`, a round knurled cap on a dark table; `nut`, a grey hexagon
//!   nut on a light table), with defects `scratch`, `hole`, `stain` and `missing` ([`DEFECTS`]);
//! - **Perlin** ([`PERLIN_CATEGORIES`]): a veined `marble` texture and a `pebble` object on sand,
//!   both built from gradient noise, with noise-shaped defects in the spirit of DRAEM's anomaly
//!   synthesis: `blend`, `tint`, `smooth`, `crack` ([`PERLIN_DEFECTS`]).
//!
//! Normal images vary in pattern phase, position, rotation, lighting and sensor noise; every
//! defect has an exact mask (the set of pixels the defect changed). Everything derives from the
//! seed: the same config writes the same bytes, and a category's images do not depend on which
//! other categories are generated.

mod classic;
mod config;
mod defects;
mod noise;
mod perlin;
mod scene;
mod write;

pub use config::{
    defects_of, generator_of, SynthConfig, ALL_CATEGORIES, DEFECTS, MARKER, PERLIN_CATEGORIES,
    PERLIN_DEFECTS, SYNTH_CATEGORIES,
};
pub use scene::Generator;
pub use write::{generate, generate_with_progress};
