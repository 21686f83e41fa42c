//! procpool-worker: the main loop that runs inside every worker process (work in progress).
