# Vivado 2023.2: block design (Zynq PS + ctrain_top), synthesis, implementation,
# bitstream.  Run from overlay/build/<board>/ by `make bitstream BOARD=<board>`
# after `make hls`; leaves ctrain.bit and ctrain.hwh in that directory.
#
# Every board fact comes from hls/config/<board>.h through scripts/board.tcl:
# part, Vivado board files (CTRAIN_BOARD_PART: the PS preset with DDR and
# MIO), PS kind, the HP port and its width (CTRAIN_DDR_BEAT bytes), the clock.
#
#   zynq7 (Pynq-Z2): processing_system7, m_axi -> S_AXI_HP0 (64 bit) through
#            an AXI SmartConnect, control from M_AXI_GP0 through an AXI
#            Interconnect, FCLK_CLK0 at CTRAIN_CLOCK_MHZ.
#   zynqmp (KV260, AUP-ZU3, ZCU104, ZCU102, Ultra96-V2): zynq_ultra_ps_e,
#            m_axi -> S_AXI_HP0_FPD (128 bit), control from M_AXI_HPM0_FPD,
#            pl_clk0 at CTRAIN_CLOCK_MHZ.
#   Board files: ZCU104, ZCU102 and the K26 SOM (xilinx.com:kv260_som) ship
#   with Vivado or its board store; Pynq-Z2 (tul.com.tw), AUP-ZU3
#   (realdigital.org:aup-zu3-8gb) and Ultra96-V2 (avnet.com) come from the
#   XilinxBoardStore / vendor repositories: add them to board.repoPaths.
#   The KV260 uses the SOM preset alone: the accelerator needs no carrier-card
#   I/O, so no connection to the kv260 carrier is made.
#
#   Two data ports (CTRAIN_DDR_PORTS 2, zynqmp only): m_axi_gmem1 -> its own
#            SmartConnect -> CTRAIN_HP_PORT1 (S_AXI_HP1_FPD, parameter name
#            S_AXI_GP3), the same width; both reach the whole DDR, and the
#            driver writes the same base into both offsets.
#
# Not run on this project's machines (no Vivado there): the script is complete
# but unverified on every board (the second port's block too).

source [file join $::env(CTRAIN_ROOT) scripts board.tcl]
set jobs [expr {[info exists ::env(CTRAIN_JOBS)] ? $::env(CTRAIN_JOBS) : 4}]
set here [pwd]
set ip_repo [file join $here hls_prj sol impl ip]
set hp_bits [expr {8 * $ddr_beat}]

create_project -force ctrain [file join $here vivado] -part $part
# The newest installed version of the board files named in the header.
set bp [lindex [lsort -decreasing [get_board_parts -quiet "[join [lrange [split $board_part :] 0 2] :]:*"]] 0]
if {$bp eq ""} {
    error "board files for $board ($board_part) are not installed in Vivado;\
           get them from https://github.com/Xilinx/XilinxBoardStore (or the vendor's page)\
           and add their path to board.repoPaths"
}
set_property board_part $bp [current_project]
set_property ip_repo_paths $ip_repo [current_project]
update_ip_catalog -rebuild

create_bd_design ctrain
set accel [create_bd_cell -type ip -vlnv ctrain:hls:ctrain_top:1.0 ctrain_top_0]

if {$ps eq "zynq7"} {
    if {$hp_port ne "S_AXI_HP0"} { error "$cfg_file: zynq7 boards use S_AXI_HP0 (CONFIG.PCW_USE_S_AXI_HP0)" }
    if {$ddr_ports > 1} { error "$cfg_file: two data ports are written for zynqmp boards only (not S_AXI_HP1 yet)" }
    set ps_cell [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps7]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps_cell
    set_property -dict [list \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
        CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH $hp_bits \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz] $ps_cell
    set ctrl_master /ps7/M_AXI_GP0
    set mem_slave /ps7/$hp_port
} elseif {$ps eq "zynqmp"} {
    if {$hp_port ne "S_AXI_HP0_FPD"} { error "$cfg_file: zynqmp boards use S_AXI_HP0_FPD (CONFIG S_AXI_GP2)" }
    set ps_cell [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e:3.5 zynq_ultra_ps_e_0]
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps_cell
    # HPM0_FPD is M_AXI_GP0, HP0_FPD is S_AXI_GP2 in the IP's parameter names.
    set_property -dict [list \
        CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} \
        CONFIG.PSU__USE__S_AXI_GP2 {1} \
        CONFIG.PSU__SAXIGP2__DATA_WIDTH $hp_bits \
        CONFIG.PSU__FPGA_PL0_ENABLE {1} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz] $ps_cell
    set ctrl_master /zynq_ultra_ps_e_0/M_AXI_HPM0_FPD
    set mem_slave /zynq_ultra_ps_e_0/$hp_port
    if {$ddr_ports > 1} {
        # HP1_FPD is S_AXI_GP3 in the IP's parameter names.
        if {$hp_port1 ne "S_AXI_HP1_FPD"} { error "$cfg_file: the second data port uses S_AXI_HP1_FPD (CONFIG S_AXI_GP3)" }
        set_property -dict [list \
            CONFIG.PSU__USE__S_AXI_GP3 {1} \
            CONFIG.PSU__SAXIGP3__DATA_WIDTH $hp_bits] $ps_cell
        set mem_slave1 /zynq_ultra_ps_e_0/$hp_port1
    }
} else {
    error "$cfg_file: CTRAIN_PS must be zynq7 or zynqmp, not '$ps'"
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
if {$ddr_ports > 1} {
    # The second data port: m_axi_gmem1 -> its own SmartConnect -> HP1_FPD, so
    # the two ports' bursts meet only in the PS's DDR controller.
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
        Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
        Master /ctrain_top_0/m_axi_gmem1 Slave $mem_slave1 \
        ddr_seg {Auto} intc_ip {New AXI SmartConnect} master_apm {0}] \
        [get_bd_intf_pins $mem_slave1]
}

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
