"""FlashSale's own OCI images (`make images`), built without a container engine.

Debian bases from mmdebstrap, the project's layers from its wheel, the Kafka jars and a static pause
binary, packed by a small deterministic OCI writer (oci.py) into OCI archives in the tool cache,
each cached by a key over everything that goes into it. docs/images.md is the user's guide.
"""
