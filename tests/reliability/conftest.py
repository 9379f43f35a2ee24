import settings  # noqa: F401  (puts the integration harness on sys.path)
