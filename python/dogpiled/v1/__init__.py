# The generated dogpiled.v1 stubs (*_pb2.py, *_pb2_grpc.py) land here: they
# are made from proto/ by python/build_stubs.py and are not checked in.
