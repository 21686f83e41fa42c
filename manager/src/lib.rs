//! procpool-manager: the parent's event loop (work in progress).
