//! daad-train.
