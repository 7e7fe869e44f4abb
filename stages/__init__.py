"""One module per dvc.yaml stage: read params and inputs, call the library, write outputs."""
