//! daad-eval.
