"""Generated protobuf and gRPC code. Rebuilt by `make proto`; never edited by hand."""
