"""The FlashSale operator (kopf). Named `flashsale_operator`: `operator` is a standard-library module."""
