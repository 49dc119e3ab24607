"""CTrain: compressed CNN training on a PYNQ FPGA accelerator, or its emulator."""
__version__ = "0.1.0"
