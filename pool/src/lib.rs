//! procpool: a process pool executor (work in progress).
