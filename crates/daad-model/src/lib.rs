//! daad-model.
