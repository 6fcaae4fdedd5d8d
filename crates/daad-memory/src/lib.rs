//! daad-memory.
