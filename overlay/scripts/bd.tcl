# Vivado 2023.2: block design (Zynq PS + ctrain_top), synthesis, implementation,
# bitstream.  Run from overlay/build/<board>/ by `make bitstream BOARD=<board>`
# after `make hls`; leaves ctrain.bit and ctrain.hwh in that directory.
#
#   Pynq-Z2: processing_system7, accelerator m_axi -> S_AXI_HP0 through an AXI
#            SmartConnect, control from M_AXI_GP0 through an AXI Interconnect,
#            FCLK_CLK0 at CTRAIN_CLOCK_MHZ.  Needs the Pynq-Z2 board files
#            (tul.com.tw:pynq-z2) installed in Vivado for the PS preset.
#   ZCU104, ZCU102, Ultra96-V2:
#            zynq_ultra_ps_e, m_axi -> S_AXI_HP0_FPD (128 bit), control from
#            M_AXI_HPM0_FPD, pl_clk0 at CTRAIN_CLOCK_MHZ (ZCU104/ZCU102 board
#            files ship with Vivado; Ultra96-V2's come from Avnet's board store).
#   The HP port widths equal CTRAIN_DDR_BEAT (hls/config/<board>.h).

source [file join $::env(CTRAIN_ROOT) scripts board.tcl]
set jobs [expr {[info exists ::env(CTRAIN_JOBS)] ? $::env(CTRAIN_JOBS) : 4}]
set here [pwd]
set ip_repo [file join $here hls_prj sol impl ip]

array set board_parts {pynq_z2 tul.com.tw:pynq-z2:part0:1.0 zcu104 xilinx.com:zcu104:part0:1.1
                       zcu102 xilinx.com:zcu102:part0:3.4 ultra96 avnet.com:ultra96v2:part0:1.2}

create_project -force ctrain [file join $here vivado] -part $part
set bp [lindex [lsort -decreasing [get_board_parts -quiet "[join [lrange [split $board_parts($board) :] 0 2] :]:*"]] 0]
if {$bp eq ""} {
    error "board files for $board ($board_parts($board)) are not installed in Vivado;\
           for the Pynq-Z2 get them from https://github.com/Xilinx/XilinxBoardStore\
           (or TUL's Pynq-Z2 page) and add their path to board.repoPaths"
}
set_property board_part $bp [current_project]
set_property ip_repo_paths $ip_repo [current_project]
update_ip_catalog -rebuild

create_bd_design ctrain
set accel [create_bd_cell -type ip -vlnv ctrain:hls:ctrain_top:1.0 ctrain_top_0]

if {$board eq "pynq_z2"} {
    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps7]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set_property -dict [list \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
        CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz] $ps
    set ctrl_master /ps7/M_AXI_GP0
    set mem_slave /ps7/S_AXI_HP0
} else {
    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e:3.5 zynq_ultra_ps_e_0]
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
    # HPM0_FPD is M_AXI_GP0, HP0_FPD is S_AXI_GP2 in the IP's parameter names.
    set_property -dict [list \
        CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} \
        CONFIG.PSU__USE__S_AXI_GP2 {1} \
        CONFIG.PSU__SAXIGP2__DATA_WIDTH {128} \
        CONFIG.PSU__FPGA_PL0_ENABLE {1} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz] $ps
    set ctrl_master /zynq_ultra_ps_e_0/M_AXI_HPM0_FPD
    set mem_slave /zynq_ultra_ps_e_0/S_AXI_HP0_FPD
}

# Control: PS master -> AXI Interconnect -> s_axi_control (clock, reset and
# address automation create the interconnect and a proc_sys_reset).
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
    Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
    Master $ctrl_master Slave /ctrain_top_0/s_axi_control \
    ddr_seg {Auto} intc_ip {New AXI Interconnect} master_apm {0}] \
    [get_bd_intf_pins ctrain_top_0/s_axi_control]
# Data: m_axi_gmem -> SmartConnect -> PS high-performance port into DDR.
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
    Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
    Master /ctrain_top_0/m_axi_gmem Slave $mem_slave \
    ddr_seg {Auto} intc_ip {New AXI SmartConnect} master_apm {0}] \
    [get_bd_intf_pins $mem_slave]

# The driver polls ap_done; the interrupt pin stays unconnected.
assign_bd_address
validate_bd_design
save_bd_design

set bd_file [get_files ctrain.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
add_files -norecurse $wrapper
set_property top ctrain_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%" ||
    [string match "*ERROR*" [get_property STATUS [get_runs impl_1]]]} {
    error "implementation failed: [get_property STATUS [get_runs impl_1]]"
}
set wns [get_property STATS.WNS [get_runs impl_1]]
puts "impl_1 done, WNS $wns ns"
if {$wns ne "" && $wns < 0} {
    puts "WARNING: timing not met (WNS $wns ns) at $clock_mhz MHz"
}

# PYNQ loads <name>.bit together with <name>.hwh.
file copy -force [file join $here vivado ctrain.runs impl_1 ctrain_wrapper.bit] [file join $here ctrain.bit]
file copy -force [file join $here vivado ctrain.gen sources_1 bd ctrain hw_handoff ctrain.hwh] \
    [file join $here ctrain.hwh]
puts "wrote [file join $here ctrain.bit] and [file join $here ctrain.hwh]"
exit
