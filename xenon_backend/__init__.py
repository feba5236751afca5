"""Python client of the Xenon middleware (xenon-grpc)."""
