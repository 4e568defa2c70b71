"""Inputs: bytes to a validated image the model can read, and the bundled sample images."""
