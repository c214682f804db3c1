"""A fake Cisco ISE ERS server (JSON and minimal XML) faithful to shared/reference/ise-pxgrid-ers-ad.md §2."""
