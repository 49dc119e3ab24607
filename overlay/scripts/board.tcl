# Board parameters for the Tcl flows, read from the same config header the C++
# uses (overlay/hls/config/<board>.h): every board fact lives there.
# Needs: CTRAIN_BOARD, CTRAIN_ROOT in the environment.
# Sets: board, part, board_part, ps (zynq7 | zynqmp), hp_port, clock_mhz,
#       ddr_beat (bytes), ddr_ports (m_axi data ports, 1 unless the header
#       sets CTRAIN_DDR_PORTS), hp_port1 (the second port's PS port, "" with
#       one), board_define.

set board $::env(CTRAIN_BOARD)
set root $::env(CTRAIN_ROOT)
set cfg_file [file join $root hls config ${board}.h]
if {![file exists $cfg_file]} {
    set known {}
    foreach h [lsort [glob -nocomplain -directory [file join $root hls config] *.h]] {
        if {[file tail $h] ne "board.h"} { lappend known [file rootname [file tail $h]] }
    }
    error "unknown board '$board': no $cfg_file (boards: [join $known {, }])"
}
set fh [open $cfg_file r]
set cfg [read $fh]
close $fh

proc cfg_define {cfg cfg_file name} {
    if {[regexp "#define CTRAIN_${name}\[ \t\]+\"(\[^\"\]*)\"" $cfg -> value]} {
        return $value
    }
    if {[regexp "#define CTRAIN_${name}\[ \t\]+(\[^ \t\r\n\]+)" $cfg -> value]} {
        return $value
    }
    error "$cfg_file: no CTRAIN_$name"
}

set part       [cfg_define $cfg $cfg_file PART]
set board_part [cfg_define $cfg $cfg_file BOARD_PART]
set ps         [cfg_define $cfg $cfg_file PS]
set hp_port    [cfg_define $cfg $cfg_file HP_PORT]
set clock_mhz  [cfg_define $cfg $cfg_file CLOCK_MHZ]
set ddr_beat   [cfg_define $cfg $cfg_file DDR_BEAT]
set ddr_ports  1
set hp_port1   ""
if {[regexp "#define CTRAIN_DDR_PORTS\[ \t\]+(\[0-9\]+)" $cfg -> n]} { set ddr_ports $n }
if {$ddr_ports > 1} { set hp_port1 [cfg_define $cfg $cfg_file HP_PORT1] }
if {$ddr_ports < 1 || $ddr_ports > 2} { error "$cfg_file: CTRAIN_DDR_PORTS must be 1 or 2" }
set board_define "CTRAIN_BOARD_[string toupper $board]"
