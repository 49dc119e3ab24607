# Vitis HLS 2023.2: C simulation, synthesis and IP export of ctrain_top.
# Run from overlay/build/<board>/ by `make hls BOARD=<board>`.

source [file join $::env(CTRAIN_ROOT) scripts board.tcl]

set hls [file join $root hls]
set cflags "-std=c++14 -I[file join $root include] -I$hls -I[file join $hls config] -D$board_define"
# The synthesised sources; csim_api.cpp is the host wrapper and stays out.
set sources {agu.cpp conv_rows.cpp conv_wg.cpp ctrain_top.cpp fetch.cpp pe_array.cpp
             quant.cpp stream.cpp update.cpp}

open_project -reset hls_prj
set_top ctrain_top
foreach src $sources {
    add_files [file join $hls $src] -cflags $cflags
}
add_files -tb [file join $hls tb ctrain_tb.cpp] -cflags $cflags

open_solution -reset sol -flow_target vivado
set_part $part
create_clock -period [format %.3f [expr {1000.0 / $clock_mhz}]] -name default
# 64-bit m_axi offset (DDR_LO/HI registers) as docs/isa.md's register map expects.
config_interface -m_axi_addr64=true
config_export -format ip_catalog -rtl verilog -vendor ctrain -library hls \
    -ipname ctrain_top -version 1.0 -display_name "CTrain accelerator ($board)"

csim_design
csynth_design
export_design -format ip_catalog
exit
