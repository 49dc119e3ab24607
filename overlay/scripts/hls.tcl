# Vitis HLS 2023.2: C simulation, synthesis and IP export of ctrain_top.
# Run from overlay/build/<board>/ by `make hls BOARD=<board>`.

source [file join $::env(CTRAIN_ROOT) scripts board.tcl]

set hls [file join $root hls]
set cflags "-std=c++14 -I[file join $root include] -I$hls -I[file join $hls config] -D$board_define"
# The synthesised sources: every hls/*.cpp but csim_api.cpp (the host wrapper).
set sources {}
foreach path [lsort [glob -directory $hls *.cpp]] {
    if {[file tail $path] ne "csim_api.cpp"} {
        lappend sources $path
    }
}

open_project -reset hls_prj
set_top ctrain_top
foreach src $sources {
    add_files $src -cflags $cflags
}
add_files -tb [file join $hls tb ctrain_tb.cpp] -cflags $cflags

open_solution -reset sol -flow_target vivado
set_part $part
create_clock -period [format %.3f [expr {1000.0 / $clock_mhz}]] -name default
# m_axi offsets are 64-bit by default in Vitis HLS (the DDR_LO/HI registers of
# docs/isa.md); nothing to configure.
config_export -format ip_catalog -rtl verilog -vendor ctrain -library hls \
    -ipname ctrain_top -version 1.0 -display_name "CTrain accelerator ($board)"

csim_design
csynth_design
export_design -format ip_catalog
exit
