"""Arbiter wire contract: generated protobuf and gRPC modules live in ``arbiter.v1``."""
