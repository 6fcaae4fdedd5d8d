//! daad-nn.
