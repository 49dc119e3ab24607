# Vitis HLS 2023.2: C simulation, synthesis, C/RTL co-simulation (COSIM=1) and IP export
# of ctrain_top.  Run from overlay/build/<board>/ by `make hls BOARD=<board>`.

source [file join $::env(CTRAIN_ROOT) scripts board.tcl]

set hls [file join $root hls]
set cflags "-std=c++14 -I[file join $root include] -I$hls -I[file join $hls config] -D$board_define"
# The synthesised sources: every hls/*.cpp but csim_api.cpp, which holds the
# window <-> port copies the testbench calls (a testbench file here).
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
# The testbench calls ctrain_top itself (the signature synthesis sees), so
# csim_design and cosim_design run the same program on it.
# ctrain_tb.cpp is main; tb_*.cpp its helpers, reference and tests.
foreach tb [lsort [concat [list [file join $hls tb ctrain_tb.cpp]] [glob [file join $hls tb tb_*.cpp]]]] {
    add_files -tb $tb -cflags $cflags
}
add_files -tb [file join $hls csim_api.cpp] -cflags $cflags

open_solution -reset sol -flow_target vivado
set_part $part
create_clock -period [format %.3f [expr {1000.0 / $clock_mhz}]] -name default
# The DDR_LO/HI pair of docs/isa.md (and DDR1_LO/HI of a two-port build's
# gmem1): a 64-bit m_axi offset, stated rather than left to a release's
# default (UG1399 has said both for the Vivado flow).
config_interface -m_axi_addr64=true
config_export -format ip_catalog -rtl verilog -vendor ctrain -library hls \
    -ipname ctrain_top -version 1.0 -display_name "CTrain accelerator ($board)"

csim_design
csynth_design
# RTL against the same testbench (its images fit the m_axi depth); hours of
# RTL simulation, so only with `make hls COSIM=1`.
if {[info exists ::env(CTRAIN_COSIM)] && $::env(CTRAIN_COSIM) eq "1"} {
    cosim_design -rtl verilog
}
export_design -format ip_catalog
exit
