"""Generated from proto/arbiter/v1 by scripts/proto.sh; never edit the *_pb2* modules by hand."""
