//! daad-data.
