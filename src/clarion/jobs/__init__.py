"""Long-running work (clustering) off the event loop, with progress; in-process runner by default."""
