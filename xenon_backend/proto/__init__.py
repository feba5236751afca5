"""Generated gRPC stubs (build output, not committed)."""
