"""The numpy engine: bit-exact emulation of the accelerator in numpy, one
module beside each HLS unit (overlay/hls): top (ctrain_top.cpp: fetch,
validate, dispatch), conv (conv.cpp, pe_array.cpp), sconv (sconv.cpp,
sconv_rows.cpp), stream (stream.cpp: ReLU, max pooling, batch norm), eltwise (eltwise.cpp: residual
add, average pooling), update (update.cpp), quant (quant.cpp: the statistics
record); operands holds what they share."""
from .top import NumpyEngine

__all__ = ["NumpyEngine"]
