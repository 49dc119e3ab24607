# Board parameters for the Tcl flows, read from the same config header the C++
# uses (overlay/hls/config/<board>.h), so part and clock live in one place.
# Needs: CTRAIN_BOARD, CTRAIN_ROOT in the environment.

set board $::env(CTRAIN_BOARD)
set root $::env(CTRAIN_ROOT)
set cfg_file [file join $root hls config ${board}.h]
if {![file exists $cfg_file]} {
    error "unknown board '$board': no $cfg_file"
}
set fh [open $cfg_file r]
set cfg [read $fh]
close $fh
if {![regexp {#define CTRAIN_PART "([^"]+)"} $cfg -> part]} {
    error "$cfg_file: no CTRAIN_PART"
}
if {![regexp {#define CTRAIN_CLOCK_MHZ ([0-9]+)} $cfg -> clock_mhz]} {
    error "$cfg_file: no CTRAIN_CLOCK_MHZ"
}
set board_define "CTRAIN_BOARD_[string toupper $board]"
