"""Generated gRPC stubs for genesys.v1 (tools/gen_protos.py)."""
