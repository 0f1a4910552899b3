"""DVC stage entrypoints (`python -m pipelines.<stage>`). Each loads its params section, reads its
declared deps, calls one library function and writes its declared outs. No logic lives here."""
