"""Protocol-faithful fakes of outside systems that cannot run here (Cisco ISE), built from shared/reference."""
