import settings  # puts the integration harness on sys.path

# Before anything imports the harness: the group test's GroupChannel and
# test_group's helpers live in python/dogpiled, whose stubs the harness then
# uses too (one `dogpiled` package per process, as in tests/replication).
settings.use_python_client()
